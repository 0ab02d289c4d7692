//! The baseline for `benches/load.sh`: actix-web with the exporter's server
//! defaults, reading the callback body and answering `{"code":0}` without
//! looking at it. `cargo run --release --example bare_handler -- 127.0.0.1:19400 [WORKERS]`
use actix_web::{web, App, HttpResponse, HttpServer};

async fn callback(body: web::Bytes) -> HttpResponse {
    std::hint::black_box(body);
    HttpResponse::Ok().content_type("application/json").body(r#"{"code":0}"#)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:19400".to_owned());
    let server = HttpServer::new(|| {
        App::new().app_data(web::PayloadConfig::new(1 << 20)).route("/callback", web::post().to(callback))
    });
    // Like the exporter's --workers: one per CPU unless told.
    let server = match std::env::args().nth(2) {
        Some(n) => server.workers(n.parse().expect("WORKERS is a number")),
        None => server,
    };
    server.bind(address)?.run().await
}
