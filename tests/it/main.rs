//! Integration tests of ngayle: the command line run as a user runs it, the schedule as the
//! admin writes it, and broken input of every kind. One test binary, modules by subject.

mod ack;
mod days_off;
mod deadlines;
mod deploy;
mod diagnostics;
mod events;
mod faults;
mod feed;
mod fuzz;
mod http;
mod lunar_cli;
mod personal;
mod reminders;
mod service;
mod smtp;
mod support;
mod titles;
mod upgrade;
