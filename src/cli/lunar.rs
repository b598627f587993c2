//! `ngayle lunar DATE` (readable) and `ngayle lunar --from --to` (tsv).

use std::io::Write;

use chrono::{Datelike, NaiveDate};

use super::{Failure, parse_date};
use crate::lunar::{self, FIRST_YEAR, LAST_YEAR, LunarDate};
use crate::vietnam;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("range").args(["from", "to"]).multiple(true).conflicts_with("date")))]
pub struct Args {
    /// A solar date (YYYY-MM-DD) to convert.
    #[arg(value_parser = parse_date, required_unless_present_any = ["from", "to"])]
    pub date: Option<NaiveDate>,
    /// First day of a range (tsv output).
    #[arg(long, value_parser = parse_date, requires = "to")]
    pub from: Option<NaiveDate>,
    /// Last day of a range, included.
    #[arg(long, value_parser = parse_date, requires = "from")]
    pub to: Option<NaiveDate>,
}

/// The range every date command accepts: the lunar calendar's.
pub fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), Failure> {
    for d in [from, to] {
        if !(FIRST_YEAR..=LAST_YEAR).contains(&d.year()) {
            return Err(Failure::Usage(format!(
                "ngày {d} nằm ngoài khoảng hỗ trợ {FIRST_YEAR}-01-01 … {LAST_YEAR}-12-31"
            )));
        }
    }
    if from > to {
        return Err(Failure::Usage(format!("--from {from} ở sau --to {to}")));
    }
    Ok(())
}

pub fn run(args: &Args, out: &mut impl Write) -> Result<(), Failure> {
    match (args.date, args.from, args.to) {
        (Some(date), _, _) => {
            check_range(date, date)?;
            let l = lunar::solar_to_lunar(date).map_err(|e| Failure::Usage(e.to_string()))?;
            writeln!(out, "{}", describe(date, l))?;
            if date.year() < 1968 {
                writeln!(
                    out,
                    "Lưu ý: tính theo giờ UTC+7; lịch in ở miền Bắc trước năm 1968 dùng UTC+8 nên có thể lệch một ngày."
                )?;
            }
            Ok(())
        }
        (None, Some(from), Some(to)) => {
            check_range(from, to)?;
            let days = lunar::range(from, to).map_err(|e| Failure::Usage(e.to_string()))?;
            for (d, l) in days {
                writeln!(
                    out,
                    "{:04}-{:02}-{:02}\t{}\t{}\t{}\t{}",
                    d.year(),
                    d.month(),
                    d.day(),
                    l.day,
                    l.month,
                    l.year,
                    u8::from(l.leap)
                )?;
            }
            Ok(())
        }
        _ => Err(Failure::Usage(
            "cần một ngày, hoặc cả --from và --to".to_string(),
        )),
    }
}

/// `Thứ Bảy 10/02/2024 — âm lịch: mùng 1 tháng Giêng năm Giáp Thìn (1/1/2024)`.
pub fn describe(date: NaiveDate, l: LunarDate) -> String {
    format!(
        "{} — âm lịch: {} ({l})",
        vietnam::day(date),
        vietnam::lunar_named(&l)
    )
}
