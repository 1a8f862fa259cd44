-- The device's battery temperature in °C (issue 14: a phone farm's phones report it from `dumpsys battery`,
-- Linux devices from /sys/class/power_supply/*/temp): a rack's hot phone is the one that fails next.
-- NULL: not reported.
ALTER TABLE devices ADD COLUMN temperature real CHECK (temperature IS NULL OR (temperature >= -50 AND temperature <= 150));
