//! `csv_aggregate`: group the rows of a CSV file by one column and aggregate
//! another (count, sum, mean, min, max) (see docs/plugins.md#csv_aggregate).
//! Streams the rows; memory grows with the number of groups. Quoting follows
//! RFC 4180 (via the `csv` crate). The input and output delimiters can differ,
//! the output header row can be left out (`header = false`), and a sum, min
//! or max over a column of integers is written as an exact integer.

use std::collections::BTreeMap;

use engine_sdk::{Context, Error, Result, bail};

#[derive(serde::Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
enum Op {
    #[default]
    Count,
    Sum,
    Mean,
    Min,
    Max,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Count => "count",
            Op::Sum => "sum",
            Op::Mean => "mean",
            Op::Min => "min",
            Op::Max => "max",
        }
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    group_by: Option<String>,
    #[serde(default)]
    op: Op,
    column: Option<String>,
    #[serde(default = "comma")]
    delimiter: String,
    input_delimiter: Option<String>,
    output_delimiter: Option<String>,
    #[serde(default = "yes")]
    header: bool,
}

fn yes() -> bool {
    true
}

fn one_byte(name: &str, v: &str) -> Result<u8> {
    match v.as_bytes() {
        [b] => Ok(*b),
        _ => bail!("param `{name}` must be a single ASCII character, got `{v}`"),
    }
}

fn comma() -> String {
    ",".to_owned()
}

#[derive(Default)]
struct Acc {
    rows: u64,
    values: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
    /// While every value is an integer: their exact sum, min and max.
    int: Option<(i128, i64, i64)>,
    /// A value that is not an integer was seen.
    not_int: bool,
}

fn column_index(headers: &csv::ByteRecord, name: &str) -> Result<usize> {
    headers.iter().position(|h| h == name.as_bytes()).ok_or_else(|| {
        let cols: Vec<String> = headers.iter().map(|h| format!("`{}`", String::from_utf8_lossy(h))).collect();
        Error::msg(format!("input `csv` has no column `{name}` (columns: {})", cols.join(", ")))
    })
}

fn run(ctx: &mut Context) -> Result<()> {
    let p: Params = ctx.params()?;
    let Some(group_by) = p.group_by else { bail!("param `group_by` is required (a column name)") };
    let delimiter = one_byte("delimiter", &p.delimiter)?;
    let in_delim = match &p.input_delimiter {
        Some(d) => one_byte("input_delimiter", d)?,
        None => delimiter,
    };
    let out_delim = match &p.output_delimiter {
        Some(d) => one_byte("output_delimiter", d)?,
        None => delimiter,
    };
    let column = match (p.op, p.column) {
        (Op::Count, c) => c,
        (_, Some(c)) => Some(c),
        (op, None) => bail!("param `column` is required for op `{}`", op.name()),
    };
    let mut reader = csv::ReaderBuilder::new().delimiter(in_delim).has_headers(true).from_reader(ctx.input("csv")?);
    let invalid = |e: csv::Error| Error::msg(format!("input `csv` is not valid CSV: {e}"));
    let headers = reader.byte_headers().map_err(invalid)?.clone();
    if headers.is_empty() {
        bail!("input `csv` is empty (expected a header row)");
    }
    let key_idx = column_index(&headers, &group_by)?;
    let val_idx = match &column {
        Some(c) => Some(column_index(&headers, c)?),
        None => None,
    };

    let mut groups: BTreeMap<Vec<u8>, Acc> = BTreeMap::new();
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record).map_err(invalid)? {
        let line = record.position().map_or(0, |pos| pos.line());
        let key = record.get(key_idx).unwrap_or_default();
        let acc = groups.entry(key.to_vec()).or_default();
        acc.rows += 1;
        if p.op == Op::Count {
            continue;
        }
        let Some(vi) = val_idx else { continue };
        let raw = String::from_utf8_lossy(record.get(vi).unwrap_or_default());
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let Ok(v) = raw.parse::<f64>() else {
            bail!(
                "input `csv` line {line}: value `{raw}` in column `{}` is not a number",
                column.as_deref().unwrap_or("")
            );
        };
        match (raw.parse::<i64>(), acc.not_int) {
            (Ok(i), false) => {
                acc.int = Some(match acc.int {
                    None => (i as i128, i, i),
                    Some((s, lo, hi)) => (s + i as i128, lo.min(i), hi.max(i)),
                })
            }
            _ => {
                acc.not_int = true;
                acc.int = None;
            }
        }
        acc.values += 1;
        acc.sum += v;
        acc.min = Some(acc.min.map_or(v, |m| m.min(v)));
        acc.max = Some(acc.max.map_or(v, |m| m.max(v)));
    }

    let out = ctx.output("out")?;
    let mut writer = csv::WriterBuilder::new().delimiter(out_delim).from_writer(out);
    if p.header {
        writer.write_record([group_by.as_bytes(), p.op.name().as_bytes()])?;
    }
    for (key, acc) in &groups {
        let value = match (p.op, acc.int) {
            (Op::Sum, Some((s, _, _))) => s.to_string(),
            (Op::Min, Some((_, lo, _))) => lo.to_string(),
            (Op::Max, Some((_, _, hi))) => hi.to_string(),
            _ => String::new(),
        };
        let value = if !value.is_empty() {
            value
        } else {
            match p.op {
                Op::Count => acc.rows.to_string(),
                Op::Sum => fmt(acc.sum),
                Op::Mean if acc.values == 0 => String::new(),
                Op::Mean => fmt(acc.sum / acc.values as f64),
                Op::Min => acc.min.map(fmt).unwrap_or_default(),
                Op::Max => acc.max.map(fmt).unwrap_or_default(),
            }
        };
        writer.write_record([key.as_slice(), value.as_bytes()])?;
    }
    let out = writer.into_inner().map_err(|e| Error::msg(format!("writing output `out`: {}", e.error())))?;
    out.finish()
}

/// Shortest text that reads back as the same f64; integral values print
/// without a decimal point (`3`, `2.5`, `-0.1`).
fn fmt(v: f64) -> String {
    if v == 0.0 { "0".to_owned() } else { format!("{v}") }
}

engine_sdk::task!(
    name = "csv_aggregate",
    version = "0.1.0",
    description = "group CSV rows by `group_by` and compute `op` (count, sum, mean, min, max) of `column`; integer columns sum to integers",
    inputs = ["csv"],
    outputs = ["out"],
    params = ["group_by", "op", "column", "delimiter", "input_delimiter", "output_delimiter", "header"],
    run = run,
);
