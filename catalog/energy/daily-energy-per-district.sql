SELECT building_district AS district,
       CAST(date_trunc('day', read_at) AS DATE) AS day,
       count(DISTINCT meter_id) AS buildings,
       round(sum(kwh), 3) AS kwh
FROM energy.meter_readings
GROUP BY ALL
