//! Atlas list paging: `pageNum` from 1, `itemsPerPage` 1..=500 (default 100), `includeCount`.

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page_num: u64,
    pub items_per_page: u64,
    pub include_count: bool,
}

impl Default for Page {
    fn default() -> Self {
        Page { page_num: 1, items_per_page: 100, include_count: true }
    }
}

impl Page {
    pub fn parse(page_num: Option<&str>, items_per_page: Option<&str>, include_count: Option<&str>) -> Result<Page> {
        let mut page = Page::default();
        if let Some(v) = page_num {
            page.page_num = parse_in(v, "pageNum", 1, i32::MAX as u64)?;
        }
        if let Some(v) = items_per_page {
            page.items_per_page = parse_in(v, "itemsPerPage", 1, 500)?;
        }
        if let Some(v) = include_count {
            page.include_count = parse_bool(v, "includeCount")?;
        }
        Ok(page)
    }

    pub fn offset(&self) -> u64 {
        (self.page_num - 1).saturating_mul(self.items_per_page)
    }

    pub fn has_next(&self, total: u64) -> bool {
        self.offset().saturating_add(self.items_per_page) < total
    }
}

fn parse_in(v: &str, name: &str, min: u64, max: u64) -> Result<u64> {
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Error::InvalidQueryParameter { name: name.into(), value: v.into() }),
    }
}

pub fn parse_bool(v: &str, name: &str) -> Result<bool> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::InvalidQueryParameter { name: name.into(), value: v.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(Page::parse(None, Some("0"), None).is_err());
        assert!(Page::parse(None, Some("501"), None).is_err());
        assert!(Page::parse(Some("0"), None, None).is_err());
        assert!(Page::parse(None, None, Some("yes")).is_err());
        let p = Page::parse(Some("3"), Some("500"), Some("false")).unwrap();
        assert_eq!(p.offset(), 1000);
        assert!(!p.include_count);
        assert!(p.has_next(1501));
        assert!(!p.has_next(1500));
    }
}
