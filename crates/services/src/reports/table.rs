//! A report as a table: one sheet of typed values, written as XLSX or CSV by
//! `ruleiq-docs`.

use chrono::{DateTime, NaiveDate, Utc};
use ruleiq_docs::xlsx::{Cell, Column, Sheet, Workbook};

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Integer(i64),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Empty,
}

impl Value {
    pub fn text(s: &str) -> Self {
        Self::Text(s.to_owned())
    }

    pub fn opt(s: Option<&str>) -> Self {
        s.map_or(Self::Empty, Self::text)
    }
}

/// A sheet: named columns with widths (in characters), and rows.
#[derive(Debug, Clone)]
pub struct Table {
    name: String,
    columns: Vec<(String, f64)>,
    rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn new(name: &str, columns: &[(&str, f64)]) -> Self {
        Self {
            name: name.to_owned(),
            columns: columns.iter().map(|(h, w)| ((*h).to_owned(), *w)).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    fn sheet(self) -> Sheet {
        Sheet {
            name: self.name,
            columns: self
                .columns
                .into_iter()
                .map(|(header, width)| Column {
                    header,
                    width: Some(width),
                })
                .collect(),
            rows: self
                .rows
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|v| match v {
                            Value::Text(s) => Cell::Text(s),
                            Value::Integer(n) => Cell::Integer(n),
                            Value::Date(d) => Cell::Date(d),
                            Value::DateTime(t) => Cell::DateTime(t),
                            Value::Empty => Cell::Empty,
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// The table as an Excel workbook titled `title`.
    ///
    /// # Errors
    /// When the workbook cannot be written.
    pub fn xlsx(self, title: &str) -> Result<Vec<u8>, String> {
        ruleiq_docs::render_xlsx(&Workbook {
            title: title.to_owned(),
            sheets: vec![self.sheet()],
        })
        .map_err(|e| e.to_string())
    }

    /// The table as CSV.
    ///
    /// # Errors
    /// When the CSV cannot be written.
    pub fn csv(self) -> Result<Vec<u8>, String> {
        ruleiq_docs::render_csv(&self.sheet()).map_err(|e| e.to_string())
    }
}
