//! `ngayle report --from DATE --to DATE [--format table|csv|xlsx] [-o FILE]`: what was done
//! for each task of each occurrence in the range, by whom, when, with notes and links, and
//! what was not (see [`crate::report`]). CSV and XLSX have the Vietnamese headers of
//! [`crate::report::HEADER`]; XLSX needs `-o` (it is not text).

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clap::ValueEnum;

use super::{Failure, load_or_report, parse_date, table};
use crate::report::{HEADER, Line, lines};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ReportFormat {
    /// Aligned columns for people.
    #[default]
    Table,
    /// Comma-separated values (RFC 4180, UTF-8 with a byte-order mark for spreadsheet programs).
    Csv,
    /// An Excel workbook (needs `-o FILE`).
    Xlsx,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// First day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub from: NaiveDate,
    /// Last day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub to: NaiveDate,
    #[arg(long, value_enum, default_value_t)]
    pub format: ReportFormat,
    /// Write to this file instead of the standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(config: &Path, args: &Args, out: &mut impl Write) -> Result<(), Failure> {
    if args.to < args.from {
        return Err(Failure::Usage("`--to` trước `--from`".into()));
    }
    if (args.to - args.from).num_days() > 3660 {
        return Err(Failure::Usage("khoảng ngày quá dài (tối đa 10 năm)".into()));
    }
    if args.format == ReportFormat::Xlsx && args.output.is_none() {
        return Err(Failure::Usage(
            "`--format xlsx` cần `-o TỆP.xlsx` (tệp Excel không in ra màn hình được)".into(),
        ));
    }
    let report = load_or_report(config)?;
    let Some(schedule) = &report.schedule else {
        return Err(Failure::Invalid);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answers = runtime
        .block_on(async {
            let store = Store::open(&schedule.settings.state).await?;
            store.acks_between(args.from, args.to).await
        })
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let list = lines(schedule, &answers, args.from, args.to, chrono::Utc::now());
    let bytes = match args.format {
        ReportFormat::Table => table_text(&list, &schedule.unit.name, args).into_bytes(),
        ReportFormat::Csv => csv_bytes(&list)?,
        ReportFormat::Xlsx => xlsx_bytes(&list, &schedule.unit.name, args)?,
    };
    match &args.output {
        Some(path) => std::fs::write(path, bytes)
            .map_err(|e| Failure::Runtime(format!("không ghi được {}: {e}", path.display())))?,
        None => out.write_all(&bytes)?,
    }
    Ok(())
}

fn title(unit: &str, args: &Args) -> String {
    format!(
        "{unit} — Báo cáo kết quả thực hiện công tác tuyên truyền từ {} đến {}",
        crate::vietnam::date(args.from),
        crate::vietnam::date(args.to)
    )
}

fn table_text(list: &[Line], unit: &str, args: &Args) -> String {
    let rows: Vec<[String; 10]> = list.iter().map(Line::cells).collect();
    let done = list
        .iter()
        .filter(|l| {
            matches!(
                l.state,
                crate::report::State::Done | crate::report::State::DoneBy(_)
            )
        })
        .count();
    format!(
        "{}\n\n{}\n{done}/{} việc của từng người đã xong.\n",
        title(unit, args),
        table(&HEADER, &rows),
        list.len()
    )
}

fn csv_bytes(list: &[Line]) -> Result<Vec<u8>, Failure> {
    // The byte-order mark lets Excel read the file as UTF-8 (Vietnamese text).
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let failed = |e: csv::Error| Failure::Runtime(e.to_string());
    w.write_record(HEADER).map_err(failed)?;
    for line in list {
        w.write_record(line.cells()).map_err(failed)?;
    }
    w.into_inner().map_err(|e| Failure::Runtime(e.to_string()))
}

fn xlsx_bytes(list: &[Line], unit: &str, args: &Args) -> Result<Vec<u8>, Failure> {
    use rust_xlsxwriter::{Format, Workbook};
    let failed = |e: rust_xlsxwriter::XlsxError| Failure::Runtime(e.to_string());
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Báo cáo").map_err(failed)?;
    let bold = Format::new().set_bold();
    sheet
        .write_string_with_format(0, 0, title(unit, args), &bold)
        .map_err(failed)?;
    for (c, h) in (0u16..).zip(HEADER) {
        sheet
            .write_string_with_format(2, c, h, &bold)
            .map_err(failed)?;
    }
    for (r, line) in (3u32..).zip(list) {
        for (c, cell) in (0u16..).zip(line.cells()) {
            sheet.write_string(r, c, cell).map_err(failed)?;
        }
    }
    for (c, width) in (0u16..).zip([11, 9, 50, 32, 17, 24, 22, 17, 40, 40]) {
        sheet.set_column_width(c, width).map_err(failed)?;
    }
    sheet.set_freeze_panes(3, 0).map_err(failed)?;
    book.save_to_buffer().map_err(failed)
}
