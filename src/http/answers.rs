//! The one middleware of the app, around every route: what each answer
//! gets on its way out. It puts in the security headers the answer does
//! not set itself ([`super::headers`]), and at the connection cap it closes
//! the connection after the answer rather than keep it idle for the next
//! request, so a client waiting in the kernel's queue gets its place at
//! once instead of after the keep-alive timeout ([`super::limits`]).
//!
//! One middleware rather than a stack, without a boxed future or a lookup
//! of its state per request: every callback passes through it.
use super::headers::SECURITY_HEADERS;
use super::limits::OpenConnections;
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::ConnectionType;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

/// The middleware's factory: one per worker's app.
pub struct Answers(Rc<Shared>);

struct Shared {
    headers: [(HeaderName, HeaderValue); SECURITY_HEADERS.len()],
    open: OpenConnections,
}

impl Answers {
    /// Counting the connections of the listener in `open`.
    pub fn new(open: OpenConnections) -> Self {
        let headers =
            SECURITY_HEADERS.map(|(name, value)| (HeaderName::from_static(name), HeaderValue::from_static(value)));
        Self(Rc::new(Shared { headers, open }))
    }
}

impl<S, B> Transform<S, ServiceRequest> for Answers
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: Unpin,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = AnswersService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AnswersService { service, shared: self.0.clone() }))
    }
}

pub struct AnswersService<S> {
    service: S,
    shared: Rc<Shared>,
}

impl<S, B> Service<ServiceRequest> for AnswersService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: Unpin,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Answer<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        Answer { inner: self.service.call(req), shared: self.shared.clone() }
    }
}

/// An answer on its way out.
pub struct Answer<F> {
    inner: F,
    shared: Rc<Shared>,
}

impl<F, B> Future for Answer<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut res = ready!(Pin::new(&mut self.inner).poll(cx))?;
        let headers = res.headers_mut();
        // Which of them the answer has, in one pass over its few names:
        // a lookup of each cost more.
        let mut has = [false; SECURITY_HEADERS.len()];
        for name in headers.keys() {
            if let Some(i) = self.shared.headers.iter().position(|(ours, _)| ours == name) {
                has[i] = true;
            }
        }
        for ((name, value), has) in self.shared.headers.iter().zip(has) {
            if !has {
                // Absent, so appending is inserting, without handing back what it replaced.
                headers.append(name.clone(), value.clone());
            }
        }
        if self.shared.open.at_cap() {
            res.response_mut().head_mut().set_connection_type(ConnectionType::Close);
        }
        Poll::Ready(Ok(res))
    }
}
