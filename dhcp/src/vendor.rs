//! The vendor class (option 60) a leaf sends, and what it tells us about the leaf.
//!
//! Arista switches in ZTP send `Arista;<model>;<hw-rev>;<serial>`, for example
//! `Arista;DCS-7050S-64;01.23;JPE12221671`. Parsing is lenient: missing or empty
//! fields are `None`, extra fields are ignored, and bytes that are not UTF-8 are
//! replaced, because a leaf that sends an odd class should still be reported.

use serde::{Deserialize, Serialize};

/// What a leaf's vendor class says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VendorInfo {
    /// The whole option 60 text.
    pub class: String,
    /// Hardware model, e.g. `DCS-7050SX3-48YC8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Hardware revision, e.g. `11.00`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hw_rev: Option<String>,
    /// Serial number, e.g. `JPE20000001`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

impl VendorInfo {
    /// Parses an option 60 payload. Fields after the first are taken as model,
    /// hardware revision and serial, whatever the vendor; empty ones are `None`.
    pub fn parse(raw: &[u8]) -> VendorInfo {
        let class = Self::sanitize(raw);
        let (_, model, hw_rev, serial) = Self::fields(&class);
        let (model, hw_rev, serial) = (
            model.map(str::to_string),
            hw_rev.map(str::to_string),
            serial.map(str::to_string),
        );
        VendorInfo {
            class,
            model,
            hw_rev,
            serial,
        }
    }

    /// The option 60 text with control characters removed and bytes that are not
    /// UTF-8 replaced: safe to store, log and show.
    pub fn sanitize(raw: &[u8]) -> String {
        String::from_utf8_lossy(raw)
            .chars()
            .filter(|c| !c.is_control())
            .collect()
    }

    /// Splits sanitized option 60 text into (vendor, model, hardware revision,
    /// serial), without allocating; empty fields are `None`.
    pub fn fields(class: &str) -> (&str, Option<&str>, Option<&str>, Option<&str>) {
        let mut it = class.split(';');
        let vendor = it.next().unwrap_or("");
        let mut next = || it.next().map(str::trim).filter(|f| !f.is_empty());
        let model = next();
        let hw_rev = next();
        let serial = next();
        (vendor, model, hw_rev, serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arista_ztp_class() {
        let v = VendorInfo::parse(b"Arista;DCS-7050S-64;01.23;JPE12221671");
        assert_eq!(v.model.as_deref(), Some("DCS-7050S-64"));
        assert_eq!(v.hw_rev.as_deref(), Some("01.23"));
        assert_eq!(v.serial.as_deref(), Some("JPE12221671"));
        assert_eq!(v.class, "Arista;DCS-7050S-64;01.23;JPE12221671");
    }

    #[test]
    fn lenient_with_missing_and_extra_fields() {
        let v = VendorInfo::parse(b"Arista;DCS-7280;;");
        assert_eq!(v.model.as_deref(), Some("DCS-7280"));
        assert_eq!(v.hw_rev, None);
        assert_eq!(v.serial, None);
        let v = VendorInfo::parse(b"Arista");
        assert_eq!((v.model, v.serial), (None, None));
        let v = VendorInfo::parse(b"Arista;M;R;S;extra;more");
        assert_eq!(v.serial.as_deref(), Some("S"));
    }

    #[test]
    fn non_utf8_and_control_bytes_do_not_break_parsing() {
        let v = VendorInfo::parse(b"Arista;\xff\xfeX;01\n;SER\0");
        assert_eq!(v.serial.as_deref(), Some("SER"));
        assert!(v.model.unwrap().ends_with('X'));
    }
}
