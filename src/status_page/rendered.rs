//! The status page as its two answers, the HTML page and its JSON, served
//! like `/metrics` (`crate::expose::scrape`): one page at a time is built,
//! shared by the reads that arrive while it is, and each answer is made
//! once, on first demand, on the render thread, never on a worker that
//! handles callbacks.
use super::{html, StatusPage};
use crate::expose::render_thread;
use bytes::Bytes;
use std::sync::{Arc, OnceLock};

pub struct Rendered {
    page: Arc<StatusPage>,
    html: OnceLock<Bytes>,
    json: OnceLock<Bytes>,
}

impl From<StatusPage> for Rendered {
    fn from(page: StatusPage) -> Self {
        Self { page: Arc::new(page), html: OnceLock::new(), json: OnceLock::new() }
    }
}

impl Rendered {
    pub fn html(&self) -> Bytes {
        self.make(&self.html, |page| html::render(page).into_bytes())
    }

    pub fn json(&self) -> Bytes {
        // Plain data: serialising it cannot fail.
        self.make(&self.json, |page| serde_json::to_vec(page).unwrap_or_default())
    }

    fn make(&self, answer: &OnceLock<Bytes>, make: fn(&StatusPage) -> Vec<u8>) -> Bytes {
        let page = self.page.clone();
        answer.get_or_init(|| Bytes::from(render_thread::run(move || make(&page)))).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_answers_show_the_same_page() {
        let page = super::super::tests::recent(1000).page(1042, super::super::tests::inputs());
        let rendered = Rendered::from(page);
        let json: serde_json::Value = serde_json::from_slice(&rendered.json()).unwrap();
        assert_eq!(json["uptime_seconds"], 42);
        assert!(String::from_utf8(rendered.html().to_vec()).unwrap().contains("<html"));
        assert_eq!(rendered.html().as_ptr(), rendered.html().as_ptr(), "made once");
    }
}
