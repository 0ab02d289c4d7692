use actix_web::HttpResponse;

pub async fn healthy() -> HttpResponse {
    HttpResponse::Ok().body("Healthy\n")
}

/// Ready as soon as the listeners are bound: a `--state-file` is loaded
/// before they are.
pub async fn ready() -> HttpResponse {
    HttpResponse::Ok().body("Ready\n")
}
