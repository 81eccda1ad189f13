SELECT bin_id, measured_at, fill_level, latitude, longitude
FROM waste.bin_fill_levels
QUALIFY row_number() OVER (PARTITION BY bin_id ORDER BY measured_at DESC) = 1
  AND fill_level > 80
