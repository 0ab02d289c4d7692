//! Headers every answer carries, so that a page showing what senders chose
//! (stream names) cannot run script, be framed, or be sniffed as another type:
//! the app's answers get them from [`super::answers`], the server's own
//! from [`super::stamped`].

/// No script, no fetches, nothing framed or framing; styles inline only
/// (the status page has its own `<style>` and bar widths, no script).
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The headers, named as HTTP/1 writes them (the first is how
/// [`super::stamped`] tells an answer that has them).
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
];
