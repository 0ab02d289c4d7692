use actix_web::HttpResponse;

pub async fn healthy() -> HttpResponse {
    HttpResponse::Ok().body("Healthy\n")
}

/// Ready as soon as the listeners are bound: a `--state-file` is loaded
/// before they are.
pub async fn ready() -> HttpResponse {
    HttpResponse::Ok().body("Ready\n")
}

pub async fn landing() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(concat!(
        "<!DOCTYPE html><html><head><title>CSS Push Exporter</title></head><body>",
        "<h1>CSS Push Exporter</h1>",
        "<p>Turns Tencent Cloud CSS push error callbacks (POST /callback) into Prometheus metrics.</p>",
        "<ul><li><a href=\"metrics\">Metrics</a></li>",
        "<li><a href=\"-/healthy\">Health</a></li></ul>",
        "<p>Version ",
        env!("CARGO_PKG_VERSION"),
        "</p></body></html>\n"
    ))
}
