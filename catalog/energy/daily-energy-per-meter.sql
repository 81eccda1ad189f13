SELECT meter_id,
       any_value(building_name) AS building,
       any_value(building_district) AS district,
       CAST(date_trunc('day', read_at) AS DATE) AS day,
       round(sum(kwh), 3) AS kwh,
       count(*) AS readings
FROM energy.meter_readings
GROUP BY meter_id, day
