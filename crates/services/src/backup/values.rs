//! One column's value as JSON, and back.
//!
//! A backup is read by either engine, so a value is written in a form neither engine
//! owns: timestamps as RFC 3339 in UTC with every digit of the fraction, dates as
//! `YYYY-MM-DD`, UUIDs hyphenated, JSON columns as JSON, bytes as base64, floats as
//! the shortest decimal that reads back to the same bits (`"NaN"`, `"inf"`, `"-inf"`
//! where JSON has no number). Reading back, the entity's declared column type says
//! which of these to expect, and the value is handed to SeaORM, which writes it the
//! way it writes every other value of that type on that engine — so a restored
//! row compares, sorts and reads exactly as the original did.

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use ruleiq_db::sea_orm::{ColumnType, Value};
use serde_json::Value as Json;

/// A value SeaORM read, as JSON.
///
/// # Errors
/// For a kind of value no ruleIQ column holds (the message names it, so the column can
/// be added here).
pub fn to_json(value: Value) -> Result<Json, String> {
    Ok(match value {
        Value::Bool(v) => v.map_or(Json::Null, Json::Bool),
        Value::TinyInt(v) => v.map_or(Json::Null, Json::from),
        Value::SmallInt(v) => v.map_or(Json::Null, Json::from),
        Value::Int(v) => v.map_or(Json::Null, Json::from),
        Value::BigInt(v) => v.map_or(Json::Null, Json::from),
        Value::TinyUnsigned(v) => v.map_or(Json::Null, Json::from),
        Value::SmallUnsigned(v) => v.map_or(Json::Null, Json::from),
        Value::Unsigned(v) => v.map_or(Json::Null, Json::from),
        Value::BigUnsigned(v) => v.map_or(Json::Null, Json::from),
        Value::Float(v) => v.map_or(Json::Null, |f| float(f64::from(f))),
        Value::Double(v) => v.map_or(Json::Null, float),
        Value::String(v) => v.map_or(Json::Null, Json::String),
        Value::Char(v) => v.map_or(Json::Null, |c| Json::String(c.to_string())),
        Value::Bytes(v) => v.map_or(Json::Null, |b| Json::String(STANDARD.encode(b))),
        Value::Json(v) => v.map_or(Json::Null, |j| *j),
        Value::ChronoDate(v) => v.map_or(Json::Null, |d| {
            Json::String(d.format("%Y-%m-%d").to_string())
        }),
        Value::ChronoDateTimeUtc(v) => v.map_or(Json::Null, |t| {
            Json::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }),
        Value::Uuid(v) => v.map_or(Json::Null, |u| Json::String(u.hyphenated().to_string())),
        // As text: a JSON number would pass through a binary float on the way back.
        Value::Decimal(v) => v.map_or(Json::Null, |d| Json::String(d.to_string())),
        other => return Err(format!("a value of a kind backups do not carry: {other:?}")),
    })
}

fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or_else(
        || {
            Json::String(
                if f.is_nan() {
                    "NaN"
                } else if f > 0.0 {
                    "inf"
                } else {
                    "-inf"
                }
                .to_owned(),
            )
        },
        Json::Number,
    )
}

fn to_float(j: &Json) -> Option<f64> {
    match j {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "inf" => Some(f64::INFINITY),
            "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// The value of a column of type `ty` from its JSON; `null` is the typed null.
///
/// # Errors
/// When the JSON is not a value of that type (the message says what was expected).
pub fn from_json(ty: &ColumnType, j: Json) -> Result<Value, String> {
    fn bad(what: &str, j: &Json) -> String {
        format!("expected {what}, found {j}")
    }
    /// The typed value of a non-null `j`, through `read`.
    fn typed<T>(
        j: Json,
        what: &str,
        read: impl FnOnce(&Json) -> Option<T>,
    ) -> Result<Option<T>, String> {
        if j.is_null() {
            return Ok(None);
        }
        read(&j).map(Some).ok_or_else(|| bad(what, &j))
    }
    fn text<T>(
        j: Json,
        what: &str,
        read: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, String> {
        typed(j, what, |j| j.as_str().and_then(read))
    }
    Ok(match ty {
        ColumnType::Boolean => Value::Bool(typed(j, "true or false", Json::as_bool)?),
        ColumnType::TinyInteger | ColumnType::SmallInteger | ColumnType::Integer => {
            Value::Int(typed(j, "a 32-bit integer", |j| {
                j.as_i64().and_then(|n| i32::try_from(n).ok())
            })?)
        }
        ColumnType::BigInteger => Value::BigInt(typed(j, "a 64-bit integer", Json::as_i64)?),
        ColumnType::Float | ColumnType::Double => Value::Double(typed(j, "a number", to_float)?),
        ColumnType::Char(_) | ColumnType::String(_) | ColumnType::Text => match j {
            Json::Null => Value::String(None),
            Json::String(s) => Value::String(Some(s)),
            other => return Err(bad("a string", &other)),
        },
        ColumnType::Binary(_) | ColumnType::VarBinary(_) | ColumnType::Blob => {
            Value::Bytes(text(j, "base64 bytes", |s| STANDARD.decode(s).ok())?)
        }
        ColumnType::Json | ColumnType::JsonBinary => {
            Value::Json(if j.is_null() { None } else { Some(Box::new(j)) })
        }
        ColumnType::Date => Value::ChronoDate(text(j, "a YYYY-MM-DD date", |s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
        })?),
        ColumnType::TimestampWithTimeZone => {
            Value::ChronoDateTimeUtc(text(j, "an RFC 3339 timestamp", |s| {
                DateTime::parse_from_rfc3339(s)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            })?)
        }
        ColumnType::Uuid => Value::Uuid(text(j, "a UUID", |s| uuid::Uuid::parse_str(s).ok())?),
        ColumnType::Decimal(_) | ColumnType::Money(_) => {
            Value::Decimal(text(j, "an exact decimal as a string", |s| {
                s.parse::<rust_decimal::Decimal>().ok()
            })?)
        }
        other => return Err(format!("a column type backups do not carry: {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruleiq_db::sea_orm::sea_query::StringLen;

    fn round_trip(ty: ColumnType, v: Value) {
        let j = to_json(v.clone()).unwrap();
        // Through text, as it travels in the archive.
        let j: Json = serde_json::from_str(&j.to_string()).unwrap();
        assert_eq!(from_json(&ty, j).unwrap(), v, "{ty:?}");
    }

    #[test]
    fn every_kind_of_column_reads_back_exactly() {
        let t = DateTime::parse_from_rfc3339("2026-11-27T10:31:49.123456789+00:00")
            .unwrap()
            .with_timezone(&Utc);
        round_trip(
            ColumnType::TimestampWithTimeZone,
            Value::ChronoDateTimeUtc(Some(t)),
        );
        round_trip(
            ColumnType::TimestampWithTimeZone,
            Value::ChronoDateTimeUtc(None),
        );
        round_trip(
            ColumnType::Date,
            Value::ChronoDate(NaiveDate::from_ymd_opt(2026, 2, 28)),
        );
        round_trip(ColumnType::Boolean, Value::Bool(Some(false)));
        round_trip(ColumnType::Integer, Value::Int(Some(i32::MIN)));
        round_trip(ColumnType::BigInteger, Value::BigInt(Some(i64::MAX)));
        round_trip(ColumnType::BigInteger, Value::BigInt(None));
        round_trip(ColumnType::Double, Value::Double(Some(0.1 + 0.2)));
        round_trip(ColumnType::Double, Value::Double(Some(f64::INFINITY)));
        round_trip(
            ColumnType::Text,
            Value::String(Some("a \"quoted\"\nline ✓".into())),
        );
        round_trip(ColumnType::String(StringLen::N(16)), Value::String(None));
        round_trip(
            ColumnType::VarBinary(StringLen::None),
            Value::Bytes(Some(vec![0, 255, 10, 13])),
        );
        round_trip(
            ColumnType::Json,
            Value::Json(Some(Box::new(
                serde_json::json!({"a": [1, 2.5, null], "b": "x"}),
            ))),
        );
        round_trip(ColumnType::Uuid, Value::Uuid(Some(uuid::Uuid::now_v7())));
        round_trip(
            ColumnType::Decimal(Some((20, 9))),
            Value::Decimal(Some("0.000001234".parse().unwrap())),
        );
        // Exact to the nanosecond: the cost ledger's and the audit chain's order
        // depends on it.
        let j = to_json(Value::ChronoDateTimeUtc(Some(t))).unwrap();
        assert_eq!(j, Json::String("2026-11-27T10:31:49.123456789Z".into()));
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_with_what_was_expected() {
        let err = from_json(&ColumnType::Uuid, Json::from(3)).unwrap_err();
        assert!(err.contains("expected a UUID"), "{err}");
        let err = from_json(&ColumnType::Integer, Json::from(i64::MAX)).unwrap_err();
        assert!(err.contains("32-bit"), "{err}");
    }
}
