//! The dashboard page's files, built into the binary.

/// The file at `path` under `/ui/` (`""` is the page): its content type and
/// bytes.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    Some(match path {
        "" | "index.html" => (
            "text/html; charset=utf-8",
            include_bytes!("assets/index.html").as_slice(),
        ),
        "app.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("assets/app.js").as_slice(),
        ),
        "style.css" => (
            "text/css; charset=utf-8",
            include_bytes!("assets/style.css").as_slice(),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_its_parts_and_nothing_outside() {
        let (_, page) = asset("").unwrap();
        let page = std::str::from_utf8(page).unwrap();
        assert!(page.contains("app.js") && page.contains("style.css"));
        for (_, bytes) in ["", "app.js", "style.css"].map(|p| asset(p).unwrap()) {
            // SVG's namespace is a name, not an address that is fetched.
            let text = std::str::from_utf8(bytes)
                .unwrap()
                .replace("\"http://www.w3.org/2000/svg\"", "");
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "no outside address"
            );
        }
        assert!(asset("../Cargo.toml").is_none());
    }
}
