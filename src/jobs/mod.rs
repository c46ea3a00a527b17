//! Background jobs. Each is safe with several instances on one database:
//! it scans across organisations, then changes each task under its row lock
//! after reading it again.

pub mod deadlines;
