//! Integers as JSON Schema reads them: `43` and `43.0` are the same integer (a number whose
//! fractional part is zero), so a body may carry either; serde alone refuses `43.0` for an
//! integer field.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Visitor};

struct Integer<T>(PhantomData<T>);

impl<T: TryFrom<i64> + TryFrom<u64>> Visitor<'_> for Integer<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer in range")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        // Exactly integral and within i64 / u64: then the same integer as without `.0`.
        if v.fract() != 0.0 || !v.is_finite() {
            return Err(E::custom(format!("{v} is not an integer")));
        }
        if (0.0..18_446_744_073_709_551_616.0).contains(&v) {
            self.visit_u64(v as u64)
        } else if (-9_223_372_036_854_775_808.0..0.0).contains(&v) {
            self.visit_i64(v as i64)
        } else {
            Err(E::custom(format!("{v} is out of range")))
        }
    }
}

/// An integer field.
pub(crate) fn one<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    d.deserialize_any(Integer(PhantomData))
}

/// An optional integer field (`null` or absent: `None`).
pub(crate) fn opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    struct Opt<T>(PhantomData<T>);
    impl<'de, T: TryFrom<i64> + TryFrom<u64>> Visitor<'de> for Opt<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer in range, or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            one(d).map(Some)
        }
    }
    d.deserialize_option(Opt(PhantomData))
}

/// A list of integers (each may be written `43.0`).
pub(crate) fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    struct One<T>(T);
    impl<'de, T: TryFrom<i64> + TryFrom<u64>> serde::Deserialize<'de> for One<T> {
        fn deserialize<D2: Deserializer<'de>>(d: D2) -> Result<Self, D2::Error> {
            one(d).map(One)
        }
    }
    let items: Vec<One<T>> = serde::Deserialize::deserialize(d)?;
    Ok(items.into_iter().map(|One(v)| v).collect())
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::one")]
        a: u32,
        #[serde(default, deserialize_with = "super::opt")]
        b: Option<i32>,
    }

    fn t(s: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn integral_floats_are_integers_and_nothing_else_is() {
        let v = t(r#"{"a": 43.0, "b": -5.0}"#).unwrap();
        assert_eq!((v.a, v.b), (43, Some(-5)));
        assert_eq!(t(r#"{"a": 1}"#).unwrap().b, None);
        assert_eq!(t(r#"{"a": 1, "b": null}"#).unwrap().b, None);
        for bad in [
            r#"{"a": 1.5}"#,
            r#"{"a": -1}"#,
            r#"{"a": 4294967296}"#,
            r#"{"a": 1e300}"#,
            r#"{"a": "1"}"#,
            r#"{"a": 1, "b": 2147483648.0}"#,
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }
}
