"""English date formats for the admin: 24-hour clock, weekday named, the zone named beside every
date-time (``T`` is the zone's abbreviation: EST, MDT, UTC)."""

DATE_FORMAT = "D j M Y"
DATETIME_FORMAT = "D j M Y, H:i T"
TIME_FORMAT = "H:i"
SHORT_DATE_FORMAT = "Y-m-d"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
FIRST_DAY_OF_WEEK = 1  # Monday
