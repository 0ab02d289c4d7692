use actix_web::HttpResponse;

pub async fn healthy() -> HttpResponse {
    HttpResponse::Ok().body("Healthy\n")
}

/// Ready as soon as the listeners are bound: there is no state to load.
pub async fn ready() -> HttpResponse {
    HttpResponse::Ok().body("Ready\n")
}
