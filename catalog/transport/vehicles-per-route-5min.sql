SELECT route_id,
       time_bucket(INTERVAL '5 minutes', "timestamp") AS period,
       count(DISTINCT vehicle_id) AS vehicles
FROM transport.vehicle_positions
WHERE route_id IS NOT NULL
GROUP BY ALL
