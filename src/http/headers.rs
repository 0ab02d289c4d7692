//! Headers every answer carries, so that a page showing what senders chose
//! (stream names) cannot run script, be framed, or be sniffed as another type.
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;

/// No script, no fetches, nothing framed or framing; styles inline only
/// (the status page has its own `<style>` and bar widths, no script).
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Added to each answer that does not set them itself.
pub fn security() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
}
