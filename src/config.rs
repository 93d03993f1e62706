//! What every configuration shares: the error that names a bad field. Library configurations
//! (`validate()` before any work) report the field by its path in the configuration
//! (`sampler.sigma_final`); the command line maps paths to the flags the user typed, so the
//! library never names a flag.

use std::fmt::Display;

/// A configuration field with a value outside its range.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{field} = {value}: {expected}")]
pub struct InvalidField {
    /// Path of the field in its configuration, e.g. `sampler.sigma_final`.
    pub field: &'static str,
    /// The value given.
    pub value: String,
    /// What would be valid.
    pub expected: String,
}

/// `Ok` when `ok`, otherwise an [`InvalidField`] for `field`.
pub fn check(
    ok: bool,
    field: &'static str,
    value: impl Display,
    expected: impl Into<String>,
) -> Result<(), InvalidField> {
    if ok {
        Ok(())
    } else {
        Err(InvalidField {
            field,
            value: value.to_string(),
            expected: expected.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_the_field_and_value() {
        assert!(check(true, "a.b", 1, "x").is_ok());
        let e = check(false, "sampler.h0", 2.5, "must be in (0, 1]").unwrap_err();
        assert_eq!(e.to_string(), "sampler.h0 = 2.5: must be in (0, 1]");
    }
}
