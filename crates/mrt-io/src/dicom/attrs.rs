//! Typed attribute access over a dicom-rs dataset, with errors that name the attribute.
//!
//! Numbers are read from their typed value, or, when a writer stored the attribute with VR UN
//! (unknown; dicom-rs then keeps raw bytes), from the bytes as the decimal text of a DS/IS value,
//! which is what a dictionary-aware reader such as pydicom does.

use dicom_core::header::HasLength;
use dicom_core::{Tag, VR};
use dicom_object::mem::InMemElement;
use dicom_object::InMemDicomObject;

use crate::error::Problem;

/// Read access to one dataset (top level or a sequence item).
#[derive(Clone, Copy)]
pub struct Attrs<'a> {
    obj: &'a InMemDicomObject,
}

fn invalid(name: &'static str, detail: impl Into<String>) -> Problem {
    Problem::InvalidAttribute {
        attribute: name,
        detail: detail.into(),
    }
}

fn is_empty(e: &InMemElement) -> bool {
    e.value().primitive().map(|p| p.is_empty()).unwrap_or(false)
}

/// Text of an element stored as UN: the raw bytes, which must be printable ASCII.
fn un_text(e: &InMemElement) -> Option<String> {
    if e.vr() != VR::UN {
        return None;
    }
    let bytes = e.value().primitive()?.to_bytes();
    let text = std::str::from_utf8(&bytes).ok()?;
    Some(
        text.trim_matches(|c: char| c.is_whitespace() || c == '\0')
            .to_string(),
    )
}

fn parse_numbers<T: std::str::FromStr>(text: &str, name: &'static str) -> Result<Vec<T>, Problem> {
    text.split('\\')
        .map(|p| {
            p.trim()
                .parse::<T>()
                .map_err(|_| invalid(name, format!("{p:?} is not a number")))
        })
        .collect()
}

impl<'a> Attrs<'a> {
    /// Wraps a dataset.
    pub fn new(obj: &'a InMemDicomObject) -> Self {
        Self { obj }
    }

    /// True when the attribute is present (even if empty).
    pub fn has(&self, tag: Tag) -> bool {
        self.obj.get(tag).is_some()
    }

    /// Trimmed string value, `None` when absent or empty.
    pub fn str(&self, tag: Tag) -> Option<String> {
        let e = self.obj.get(tag)?;
        let s = match un_text(e) {
            Some(t) => t,
            None => e.to_str().ok()?.into_owned(),
        };
        let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        (!t.is_empty()).then(|| t.to_string())
    }

    /// Multi-valued string (split on backslash), empty when absent.
    pub fn strs(&self, tag: Tag) -> Vec<String> {
        self.str(tag)
            .map(|s| s.split('\\').map(|p| p.trim().to_string()).collect())
            .unwrap_or_default()
    }

    /// Required string.
    pub fn req_str(&self, tag: Tag, name: &'static str) -> Result<String, Problem> {
        self.str(tag).ok_or(Problem::MissingAttribute(name))
    }

    /// All floats of an attribute, empty when absent or empty.
    pub fn f64_list(&self, tag: Tag, name: &'static str) -> Result<Vec<f64>, Problem> {
        let Some(e) = self.obj.get(tag) else {
            return Ok(Vec::new());
        };
        if is_empty(e) {
            return Ok(Vec::new());
        }
        let values = match un_text(e) {
            Some(text) => parse_numbers::<f64>(&text, name)?,
            None => e
                .to_multi_float64()
                .map_err(|err| invalid(name, err.to_string()))?,
        };
        if values.iter().all(|v| v.is_finite()) {
            Ok(values)
        } else {
            Err(invalid(name, "value not finite"))
        }
    }

    /// Optional float (first value).
    pub fn f64(&self, tag: Tag, name: &'static str) -> Result<Option<f64>, Problem> {
        Ok(self.f64_list(tag, name)?.first().copied())
    }

    /// Optional fixed-count float vector.
    pub fn f64s<const N: usize>(
        &self,
        tag: Tag,
        name: &'static str,
    ) -> Result<Option<[f64; N]>, Problem> {
        let v = self.f64_list(tag, name)?;
        if v.is_empty() {
            return Ok(None);
        }
        let arr: [f64; N] = v
            .as_slice()
            .try_into()
            .map_err(|_| invalid(name, format!("expected {N} values, found {}", v.len())))?;
        Ok(Some(arr))
    }

    /// Integers of an attribute, empty when absent.
    pub fn int_list(&self, tag: Tag, name: &'static str) -> Result<Vec<i64>, Problem> {
        let Some(e) = self.obj.get(tag) else {
            return Ok(Vec::new());
        };
        if is_empty(e) {
            return Ok(Vec::new());
        }
        match un_text(e) {
            Some(text) => parse_numbers::<i64>(&text, name),
            None => e
                .to_multi_int::<i64>()
                .map_err(|err| invalid(name, err.to_string())),
        }
    }

    /// Optional integer (first value).
    pub fn int(&self, tag: Tag, name: &'static str) -> Result<Option<i64>, Problem> {
        Ok(self.int_list(tag, name)?.first().copied())
    }

    /// Items of a sequence attribute, empty when absent or not a sequence.
    pub fn items(&self, tag: Tag) -> &'a [InMemDicomObject] {
        self.obj.get(tag).and_then(|e| e.items()).unwrap_or(&[])
    }

    /// First item of a sequence, if any.
    pub fn first_item(&self, tag: Tag) -> Option<Attrs<'a>> {
        self.items(tag).first().map(Attrs::new)
    }
}
