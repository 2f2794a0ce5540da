//! Where a dotted key (`dhcp.link[1].range`) sits in TOML text, and which key
//! sits at a byte offset: so that every config (and flash-bundle site) error
//! names a key and, where the text has it, a line and column. Uses the spans of toml's own parser rather
//! than scanning lines, so inline tables, dotted keys and arrays all work.

use std::ops::Range;
use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

/// The parsed shape of a TOML text with spans, for lookups in both directions.
pub struct Locator<'i> {
    text: &'i str,
    root: Option<Spanned<DeTable<'i>>>,
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Seg::Key(name));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            if let Ok(i) = r[..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = &r[end + 1..];
        }
    }
    out
}

fn is_container(v: &DeValue<'_>) -> bool {
    matches!(v, DeValue::Table(_) | DeValue::Array(_))
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || (span.is_empty() && span.start == offset)
}

impl<'i> Locator<'i> {
    /// Parses `text`; a text that does not parse gives a locator that finds nothing.
    pub fn new(text: &'i str) -> Self {
        Locator {
            text,
            root: DeTable::parse(text).ok(),
        }
    }

    /// 1-based (line, column) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// The span of the value of `path` (or of its key, for tables); for a key
    /// that is not in the text, the span of the nearest enclosing key that is.
    pub fn span_of(&self, path: &str) -> Option<Range<usize>> {
        let root = self.root.as_ref()?;
        let mut best: Option<Range<usize>> = None;
        let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
        let mut array: Option<&DeArray<'_>> = None;
        for seg in segments(path) {
            let next: &Spanned<DeValue<'_>> = match seg {
                Seg::Key(k) => {
                    let Some((key, value)) =
                        table.and_then(|t| t.iter().find(|(key, _)| key.get_ref() == k))
                    else {
                        break;
                    };
                    let span = if is_container(value.get_ref()) || value.span().is_empty() {
                        key.span()
                    } else {
                        value.span()
                    };
                    if !span.is_empty() {
                        best = Some(span);
                    }
                    value
                }
                Seg::Index(i) => {
                    let Some(elem) = array.and_then(|a| a.get(i)) else {
                        break;
                    };
                    if !elem.span().is_empty() && !matches!(elem.get_ref(), DeValue::Table(_)) {
                        best = Some(elem.span());
                    }
                    elem
                }
            };
            table = next.get_ref().as_table();
            array = next.get_ref().as_array();
        }
        best
    }

    /// The dotted key at a byte offset (the deepest one whose key or value
    /// covers it), e.g. `vm.mac` or `dhcp.link[0].prefix`.
    pub fn key_at(&self, offset: usize) -> Option<String> {
        let root = self.root.as_ref()?;
        find_in_table(root.get_ref(), "", offset)
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn find_in_table(t: &DeTable<'_>, prefix: &str, offset: usize) -> Option<String> {
    for (key, value) in t.iter() {
        let path = join(prefix, key.get_ref());
        if let Some(deeper) = find_in_value(value, &path, offset) {
            return Some(deeper);
        }
        if contains(&key.span(), offset) {
            return Some(path);
        }
    }
    None
}

fn find_in_value(v: &Spanned<DeValue<'_>>, path: &str, offset: usize) -> Option<String> {
    match v.get_ref() {
        DeValue::Table(t) => find_in_table(t, path, offset).or_else(|| {
            (!v.span().is_empty() && contains(&v.span(), offset)).then(|| path.to_string())
        }),
        DeValue::Array(a) => {
            for (i, elem) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if let Some(found) = find_in_value(elem, &p, offset) {
                    return Some(found);
                }
            }
            contains(&v.span(), offset).then(|| path.to_string())
        }
        _ => contains(&v.span(), offset).then(|| path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"lab\"\n\n[dhcp]\ninterfaces = [\"Ethernet*\", \"Vlan1\"]\nlink = [{ interface = \"Ethernet7\", prefix = 29 }]\n\n[[ztp.leaf]]\nname = \"leaf3\"\n[[ztp.leaf]]\nname = \"leaf4\"\n\n[vm]\nmac.addr = \"x\"\n";

    fn at(path: &str) -> Option<(usize, usize)> {
        let loc = Locator::new(TEXT);
        loc.span_of(path).map(|s| loc.line_col(s.start))
    }

    #[test]
    fn finds_values_of_plain_array_inline_and_dotted_keys() {
        assert_eq!(at("name"), Some((1, 8)));
        assert_eq!(at("dhcp.interfaces[1]"), Some((4, 28)));
        assert_eq!(at("dhcp.link[0].prefix"), Some((5, 45)));
        assert_eq!(at("ztp.leaf[1].name"), Some((10, 8)));
        assert_eq!(at("vm.mac.addr"), Some((13, 12)));
    }

    #[test]
    fn a_missing_key_falls_back_to_its_nearest_parent() {
        assert_eq!(at("dhcp.lease_time"), Some((3, 2)));
        assert_eq!(at("ztp.leaf[1].serial"), at("ztp.leaf"));
        assert!(at("ztp.leaf").is_some());
        assert_eq!(at("nowhere.at_all"), None);
    }

    #[test]
    fn key_at_names_the_deepest_key_at_an_offset() {
        let loc = Locator::new(TEXT);
        let off = |needle: &str| TEXT.find(needle).unwrap();
        assert_eq!(
            loc.key_at(off("\"Vlan1\"")).as_deref(),
            Some("dhcp.interfaces[1]")
        );
        assert_eq!(
            loc.key_at(off("29")).as_deref(),
            Some("dhcp.link[0].prefix")
        );
        assert_eq!(
            loc.key_at(off("\"leaf4\"")).as_deref(),
            Some("ztp.leaf[1].name")
        );
        assert_eq!(loc.key_at(off("name")).as_deref(), Some("name"));
    }

    #[test]
    fn line_col_counts_characters_and_survives_bad_offsets() {
        let loc = Locator::new("a = \"é\"\nb = 1\n");
        assert_eq!(loc.line_col(0), (1, 1));
        assert_eq!(loc.line_col(9), (2, 1));
        assert_eq!(loc.line_col(6), (1, 6)); // inside the two bytes of é
        assert_eq!(loc.line_col(10_000), (3, 1));
    }

    #[test]
    fn text_that_does_not_parse_finds_nothing() {
        let loc = Locator::new("[dhcp\n");
        assert_eq!(loc.span_of("dhcp"), None);
        assert_eq!(loc.key_at(1), None);
    }
}
