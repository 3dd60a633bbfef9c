//! Peak resident memory while 32 members upload a 12-megapixel photo at the same moment
//! (issue 18, finding 10; goal: under 400 MB, every upload accepted).
//!
//! `cargo run --release -p huzhu-tests --example photo_memory [-- UPLOADS]`
//! (figures in BENCHMARKS.md). The server runs in this process on the embedded default; the
//! peak (`VmHWM`) is reset just before the uploads start (`/proc/self/clear_refs`), so it
//! counts the server's work plus the client's copies of the bodies (reported apart).

use std::time::Instant;

use huzhu_tests::claim_flow::{file, period};
use huzhu_tests::harness::{Backend, spawn_app_with};
use huzhu_tests::pictures::twelve_megapixel_jpeg;

fn status_kb(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let uploads: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(32);
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.clock.today = chrono::NaiveDate::from_ymd_opt(2025, 9, 15);
        s.http.workers = 0;
    })
    .await
    .expect("app");
    let p = period(&app, "union-power", "nm-inpatient-2025", 0).await;
    let member = app.login(&p.member_pid).await;
    let draft = file(
        &app,
        &member,
        &p,
        serde_json::json!({"kind": "inpatient", "admitted_on": "2025-03-01",
            "discharged_on": "2025-03-11", "billed_days": 10,
            "eligible_self_pay": "12000.00", "deductible": "800.00"}),
    )
    .await;
    let claim = draft["claim"]["id"].as_str().expect("claim").to_owned();
    let bodies: Vec<Vec<u8>> = (0..uploads as u64).map(twelve_megapixel_jpeg).collect();
    let body_mb = bodies.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    let workers = app.state.photo_work.workers();

    // Reset the peak, then everyone uploads at once.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    let before = status_kb("VmRSS:");
    let started = Instant::now();
    let tasks: Vec<_> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            let client = app.client.clone();
            let url = app.url(&format!(
                "/api/v1/claims/{claim}/materials?category={}",
                if i % 2 == 0 {
                    "invoice"
                } else {
                    "settlement_slip"
                }
            ));
            let token = member.clone();
            tokio::spawn(async move {
                let form = reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::bytes(bytes)
                        .file_name(format!("IMG_{i:04}.jpg"))
                        .mime_str("image/jpeg")
                        .expect("mime"),
                );
                let res = client
                    .post(url)
                    .bearer_auth(token)
                    .multipart(form)
                    .send()
                    .await
                    .expect("upload");
                res.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    let elapsed = started.elapsed();
    let peak = status_kb("VmHWM:");
    let accepted = statuses.iter().filter(|s| **s == 201).count();
    println!(
        "{uploads} concurrent 12 MP uploads ({body_mb:.1} MB of JPEG), {workers} photo workers: \
         {accepted} accepted (statuses {statuses:?}) in {:.1} s; RSS before {:.0} MB, peak {:.0} MB",
        elapsed.as_secs_f64(),
        before as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}
