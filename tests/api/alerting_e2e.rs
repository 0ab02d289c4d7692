//! End to end through Alertmanager: exporter → Prometheus (the shipped rules,
//! `for:` shortened) → Alertmanager (the shipped example config, receivers
//! pointed at a webhook inside this test). A scripted incident, one stream
//! with video frames late in several reports, must reach the webhook; a
//! stream with one small report must not.
use crate::helpers::*;
use crate::tools::{self, ChildGuard, Prometheus};
use actix_web::{web, App, HttpServer};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook receiver on 127.0.0.1: records (path, body) of every POST.
fn webhook() -> (String, Received, actix_web::dev::ServerHandle) {
    let received: Received = Arc::default();
    let state = web::Data::new(received.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(state.clone()).default_service(web::to(
            |req: actix_web::HttpRequest, body: web::Bytes, got: web::Data<Received>| async move {
                let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                got.lock().unwrap().push((req.path().to_owned(), json));
                actix_web::HttpResponse::Ok().finish()
            },
        ))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://{addr}"), received, handle)
}

/// alerts.yml with every `for:` shortened to 2 s.
fn fast_rules() -> String {
    let text = std::fs::read_to_string(tools::repo().join("prometheus/alerts.yml")).unwrap();
    let out: Vec<String> = text
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 2s", &l[..l.len() - l.trim_start().len()]),
            None => l.to_owned(),
        })
        .collect();
    assert!(out.iter().any(|l| l.trim() == "for: 2s"));
    out.join("\n")
}

/// The example alertmanager.yml, receivers at `hook`, waits of 1 s.
fn fast_alertmanager_config(hook: &str) -> String {
    let text = std::fs::read_to_string(tools::repo().join("prometheus/alertmanager.yml")).unwrap();
    let out = text
        .replace("http://alert-receiver.example.internal:5001", hook)
        .replace("group_wait: 30s", "group_wait: 1s")
        .replace("group_interval: 5m", "group_interval: 1s");
    assert!(out.contains(hook) && out.contains("group_wait: 1s"), "the example config changed shape:\n{out}");
    out
}

#[actix_web::test]
async fn a_stream_with_late_frames_pages_through_alertmanager() {
    let Some(bins) = tools::require_all(&["prometheus", "prometheus-alertmanager"]) else { return };
    let started = Instant::now();
    let (hook, received, hook_handle) = webhook();

    let am_dir = tempfile::tempdir().unwrap();
    std::fs::write(am_dir.path().join("alertmanager.yml"), fast_alertmanager_config(&hook)).unwrap();
    let am_port = tools::free_port();
    let am_args = [
        "--config.file=alertmanager.yml".to_owned(),
        "--storage.path=data".to_owned(),
        format!("--web.listen-address=127.0.0.1:{am_port}"),
        "--cluster.listen-address=".to_owned(),
        "--log.level=warn".to_owned(),
    ];
    let mut am = ChildGuard::spawn("alertmanager", &bins[1], &am_args, am_dir);
    let client = awc::Client::default();
    let ready = Instant::now();
    loop {
        am.assert_running();
        if let Ok(res) = client.get(format!("http://127.0.0.1:{am_port}/-/ready")).send().await {
            if res.status().is_success() {
                break;
            }
        }
        assert!(ready.elapsed() < Duration::from_secs(20), "alertmanager not ready:\n{}", am.log_tail());
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }

    let app = spawn_app_real_clock(&[]).await;
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         rule_files: [alerts.yml]\n\
         alerting:\n\
         \x20 alertmanagers: [{{static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]}}]\n\
         scrape_configs:\n\
         - job_name: css-push-exporter\n\
         \x20 static_configs: [{{targets: ['{}']}}]\n",
        app.metrics_base.trim_start_matches("http://")
    );
    let prom = Prometheus::start(&bins[0], &config, &[("alerts.yml", fast_rules())]).await;
    prom.wait_scraped(1).await;

    // The incident: "bad" has video frames late in report after report.
    // "fine" has one late audio frame once: no page.
    let late = |ms: u32| {
        json!([{"type": 6, "count": 2, "detail": [
        {"desc": format!("video frame arrive interval too long, interval={ms}(msec)"), "occur_time": now_ms()},
        {"desc": "video frame arrive interval too long, interval=2953(msec)", "occur_time": now_ms()}]}])
    };
    let fine = push_error("push.example.com", "live", "fine", now_ms(), json!([{"type": 7, "count": 1}]));
    assert_eq!(app.post(fine.to_string()).await.0, 200);
    for i in 0..4 {
        let body = push_error("push.example.com", "live", "bad", now_ms(), late(3000 + i * 100));
        assert_eq!(app.post(body.to_string()).await.0, 200);
        actix_web::rt::time::sleep(Duration::from_millis(1000)).await;
    }

    // Bounded wait for the page.
    let deadline = Instant::now() + Duration::from_secs(40);
    let page = loop {
        let found = received.lock().unwrap().iter().find_map(|(path, body)| {
            body["alerts"]
                .as_array()?
                .iter()
                .find(|a| a["labels"]["alertname"] == "CSSPushStreamFramesLate" && a["status"] == "firing")?;
            Some((path.clone(), body.clone()))
        });
        if let Some(found) = found {
            break found;
        }
        am.assert_running();
        assert!(
            Instant::now() < deadline,
            "no page within 40 s; prometheus alerts: {:?}\nalertmanager log:\n{}",
            prom.api("/api/v1/alerts", &[]).await,
            am.log_tail()
        );
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    };
    let (path, body) = page;
    assert_eq!(path, "/chat", "a warning goes to the chat receiver");
    let alert = &body["alerts"][0];
    assert_eq!(alert["labels"]["stream"], "bad", "{body}");
    assert_eq!(alert["labels"]["domain"], "push.example.com");
    assert_eq!(alert["labels"]["error"], "video_frame_late");
    assert_eq!(alert["labels"]["severity"], "warning");
    assert!(alert["annotations"]["summary"].as_str().unwrap().contains("push.example.com/live/bad"), "{alert}");
    assert!(alert["annotations"]["description"].as_str().unwrap().contains("video_frame_late"), "{alert}");

    // Nothing else paged: not the small report, no other alert.
    for (_, body) in received.lock().unwrap().iter() {
        for a in body["alerts"].as_array().into_iter().flatten() {
            assert_eq!(a["labels"]["alertname"], "CSSPushStreamFramesLate", "unexpected alert {a}");
            assert_eq!(a["labels"]["stream"], "bad", "unexpected alert {a}");
        }
    }
    eprintln!("alerting e2e: paged after {:?}", started.elapsed());
    app.stop().await;
    hook_handle.stop(false).await;
}
