SELECT street, lamp, count(*) AS lights, sum(watts) AS total_watts,
       min(installed) AS oldest_installed
FROM lighting.streetlights
GROUP BY ALL
