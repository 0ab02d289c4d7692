//! The baseline for `benches/load.sh`: actix-web with the exporter's server
//! defaults, reading the callback body and answering `{"code":0}` without
//! looking at it. `cargo run --release --example bare_handler -- 127.0.0.1:19400 [WORKERS]`
//!
//! With `BARE_PARSE=1` it also reads the body as the exporter does (its
//! one-pass read of a push error) and nothing more: the floor under the
//! exporter's ingest, to tell the read's share from the rest.
use actix_web::{web, App, HttpResponse, HttpServer};
use css_push_exporter::ingest::wire::push_error_in_one_pass;

async fn callback(body: web::Bytes) -> HttpResponse {
    std::hint::black_box(body);
    HttpResponse::Ok().content_type("application/json").body(r#"{"code":0}"#)
}

async fn callback_read(body: web::Bytes) -> HttpResponse {
    std::hint::black_box(push_error_in_one_pass(&body).is_some());
    callback(body).await
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:19400".to_owned());
    let read = std::env::var_os("BARE_PARSE").is_some_and(|v| v == "1");
    let server = HttpServer::new(move || {
        let handler = if read { web::post().to(callback_read) } else { web::post().to(callback) };
        App::new().app_data(web::PayloadConfig::new(1 << 20)).route("/callback", handler)
    });
    // Like the exporter's --workers: one per CPU unless told.
    let server = match std::env::args().nth(2) {
        Some(n) => server.workers(n.parse().expect("WORKERS is a number")),
        None => server,
    };
    server.bind(address)?.run().await
}
