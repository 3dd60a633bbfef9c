//! The command line: `huzhu [serve]`, `huzhu migrate up|down|status`, `huzhu admin …`,
//! `huzhu audit verify`, `huzhu reminders scan|preview|run-once`, `huzhu openapi`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};
use serde_json::json;

use crate::domain::Role;
use crate::service::audit::{self, Actor};
use crate::service::organisation::{self, OrganisationKind};
use crate::service::{invitation, staff};
use crate::settings::Settings;
use crate::startup::Application;
use crate::{db, telemetry};

/// Huzhu — workers' medical mutual-aid backend.
#[derive(Debug, Parser)]
#[command(name = "huzhu", version, about)]
pub struct Cli {
    /// Configuration file (default: `huzhu.toml` when present, or `HUZHU_CONFIG`).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Administration tasks.
    Admin {
        #[command(subcommand)]
        task: AdminTask,
    },
    /// Check the audit trail.
    Audit {
        #[command(subcommand)]
        task: AuditTask,
    },
    /// Renewal reminders.
    Reminders {
        #[command(subcommand)]
        task: RemindersTask,
    },
    /// Simulate benefits: reads a simulation request (a file, or `-` for standard input) and
    /// prints the answer — exit 0, or the error JSON and exit 2 for a refused request.
    Simulate {
        /// The request file, or `-`.
        input: String,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply pending migrations.
    Up,
    /// Roll back migrations (default: the last one).
    Down {
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether each is applied.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum AuditTask {
    /// Walk the hash chain of the audit trail and check every event (read-only; safe while the
    /// server runs). Exit 0 when the chain is intact, 1 when a problem was found (each is
    /// printed), 2 when the check could not run.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RemindersTask {
    /// Queue the renewal reminders due on a day now (what the server's scheduler does), and
    /// print how many were queued per occasion and how long it took. Exit 3 when another
    /// replica is scanning.
    Scan {
        /// The day (Asia/Shanghai) to scan; default today (or `clock.today`).
        #[arg(long)]
        today: Option<chrono::NaiveDate>,
    },
    /// Queue today's renewal reminders, then send every due message now through the
    /// configured provider (quiet hours and per-number limits apply), with a progress bar.
    RunOnce,
    /// Print what a scan on a day would queue, per occasion and scheme (reads only).
    Preview {
        /// The day (Asia/Shanghai); default today (or `clock.today`).
        #[arg(long)]
        day: Option<chrono::NaiveDate>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminTask {
    /// Create the association (the root of the tree).
    CreateAssociation {
        #[arg(long)]
        name: String,
    },
    /// Create an office, service point or unit union.
    CreateOrganisation {
        /// Public id of the parent.
        #[arg(long)]
        parent: String,
        /// office | service_point | unit_union
        #[arg(long)]
        kind: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        head_count: Option<i32>,
    },
    /// Create a staff account.
    CreateStaff {
        /// Public id of the organisation.
        #[arg(long)]
        organisation: String,
        /// union_reviewer | service_point_reviewer | association_reviewer | admin
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        login: String,
    },
    /// Issue an invitation code for a staff account (printed once).
    Invite {
        #[arg(long)]
        login: String,
    },
    /// Print three fresh random keys as `HUZHU_*` environment lines (signing key, PII
    /// encryption key, PII look-up key); needs no configuration or database.
    GenSecrets,
    /// Re-encrypt every personal-data value under the current `pii.encryption_key`
    /// (`pii.key_id`), reading old values with `pii.previous_keys`; batches with progress.
    /// Safe beside running replicas and to repeat. Afterwards the previous keys can go.
    RotatePii {
        /// Rows read and written per batch.
        #[arg(long, default_value_t = 500)]
        batch_size: u64,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("huzhu: {e}");
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Some(Command::Simulate { .. })) {
        // Standard output carries the answer; keep standard error to what matters.
        settings.log.filter = "warn".into();
    }
    telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("huzhu: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command.unwrap_or(Command::Serve), settings));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("huzhu: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await?;
        }
        Command::Openapi => print!("{}", crate::openapi::document_json()),
        Command::Simulate { input } => return simulate(&input, settings).await,
        Command::Migrate { action } => {
            crate::integrations::tls::install_crypto_provider();
            let db = db::connect(&settings).await?;
            match action {
                MigrateAction::Up => Migrator::up(&db, None).await?,
                MigrateAction::Down { steps } => Migrator::down(&db, Some(steps)).await?,
                MigrateAction::Status => {
                    for m in Migrator::get_migration_with_status(&db).await? {
                        println!("{:<10} {}", format!("{}", m.status()), m.name());
                    }
                }
            }
        }
        Command::Admin { task } => admin(task, settings).await?,
        Command::Reminders { task } => return reminders(task, settings).await,
        Command::Audit {
            task: AuditTask::Verify { json },
        } => return verify_audit_trail(&settings, json).await,
    }
    Ok(ExitCode::SUCCESS)
}

async fn simulate(input: &str, settings: Settings) -> anyhow::Result<ExitCode> {
    use std::io::{Read, Write};
    let bytes = if input == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        buf
    } else {
        std::fs::read(input).map_err(|e| anyhow::anyhow!("{input}: {e}"))?
    };
    crate::integrations::tls::install_crypto_provider();
    let db = db::connect(&settings).await?;
    if settings.migrate_on_start {
        db::migrate_up(&db).await?;
    }
    crate::service::scheme::ensure_seeds(&db).await?;
    crate::service::authorisation::ensure_seed_texts(&db).await?;
    let outcome = crate::service::simulation::simulate_bytes(&db, &bytes).await?;
    let mut out = std::io::stdout().lock();
    out.write_all(outcome.body.as_bytes())?;
    out.flush()?;
    Ok(if outcome.accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `huzhu audit verify`: reads only — no migration, no sealing — so it reports the trail as it
/// is. Exit 1 means "problems found", so a failure to check at all exits 2.
async fn verify_audit_trail(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    crate::integrations::tls::install_crypto_provider();
    let report = match db::connect(settings).await {
        Ok(db) => audit::verify(&db).await,
        Err(e) => Err(e),
    };
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("huzhu: cannot verify the audit trail: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let intact = report.is_intact();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if intact {
        println!(
            "audit trail intact: {} events checked, head seq {} hash {}",
            report.checked,
            report.head_seq.unwrap_or(0),
            report.head_hash.as_deref().unwrap_or("-"),
        );
    } else {
        for problem in &report.problems {
            println!("{problem}");
        }
        if report.problems_omitted > 0 {
            println!("… and {} more problems", report.problems_omitted);
        }
        println!(
            "audit trail NOT intact: {} problem(s), {} events checked",
            report.problems.len() as u64 + report.problems_omitted,
            report.checked,
        );
    }
    Ok(if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `huzhu reminders …`: needs the database only (no keys, except to send), so it runs beside
/// a live server.
async fn reminders(task: RemindersTask, settings: Settings) -> anyhow::Result<ExitCode> {
    use crate::service::reminders::schedule;
    crate::integrations::tls::install_crypto_provider();
    let db = db::connect(&settings).await?;
    match task {
        RemindersTask::RunOnce => {
            drop(db);
            return reminders_run_once(settings).await;
        }
        RemindersTask::Scan { today } => {
            // The scan reads the published schemes; a fresh database has none until this.
            crate::service::scheme::ensure_seeds(&db).await?;
            let today = today.unwrap_or_else(|| settings.today());
            let started = std::time::Instant::now();
            let Some(report) = schedule::run_once_as_leader(&db, today, chrono::Utc::now()).await?
            else {
                eprintln!("huzhu: another replica is scanning right now; nothing done");
                return Ok(ExitCode::from(3));
            };
            let elapsed = started.elapsed();
            for occasion in schedule::RENEWAL_OCCASIONS {
                println!("{:<16} {}", occasion.as_str(), report.queued(occasion));
            }
            println!("{:<16} {}", "offer_lapsing", report.offer_lapsing);
            println!("{:<16} {}", "offers lapsed", report.offers_lapsed);
            println!(
                "queued {} renewal reminders for {today} (due {}) in {:.3} s",
                report.total(),
                report.due_at.to_rfc3339(),
                elapsed.as_secs_f64()
            );
        }
        RemindersTask::Preview { day } => {
            let day = day.unwrap_or_else(|| settings.today());
            let rows = schedule::preview(&db, day).await?;
            for row in &rows {
                println!(
                    "{:<16} {:<24} {}",
                    row.occasion.as_str(),
                    row.scheme_code,
                    row.messages
                );
            }
            println!(
                "a scan on {day} would queue {} renewal reminders",
                rows.iter().map(|r| r.messages).sum::<u64>()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `huzhu reminders run-once`.
async fn reminders_run_once(settings: Settings) -> anyhow::Result<ExitCode> {
    use crate::service::reminders::{dispatch, limits, schedule};
    use std::io::IsTerminal;
    let state = crate::startup::build_state(settings).await?;
    let today = state.settings.today();
    let now = chrono::Utc::now();
    if let Some(report) = schedule::run_once_as_leader(&state.db, today, now).await? {
        println!("queued {} renewal reminders for {today}", report.total());
    }
    let r = &state.settings.reminders;
    let dispatcher = dispatch::Dispatcher::from_state(
        &state,
        crate::integrations::sms::provider(&state.settings)?,
        dispatch::DispatchConfig::from_settings(r),
        limits::NumberLimits {
            per_minute: r.per_number_per_minute,
            per_day: r.per_number_per_day,
        },
    );
    let stdout = std::io::stdout();
    let output = if stdout.is_terminal() {
        DispatchOutput::Bar
    } else {
        DispatchOutput::Lines {
            out: Box::new(stdout),
            every: PROGRESS_EVERY,
        }
    };
    dispatch_reporting(&dispatcher, output).await?;
    Ok(ExitCode::SUCCESS)
}

/// Messages between two progress lines of `run-once` when its output is not a terminal.
pub const PROGRESS_EVERY: u64 = 500;

/// How `run-once` shows its progress.
pub enum DispatchOutput {
    /// A progress bar (on a terminal).
    Bar,
    /// Plain lines (cron, a pipe, a log file): one per `every` messages settled, and a summary.
    Lines {
        out: Box<dyn std::io::Write + Send>,
        every: u64,
    },
}

/// The totals of a dispatch as one line: what was sent, and what is left and why.
pub fn dispatch_summary(r: &crate::service::reminders::dispatch::RunReport) -> String {
    let mut parts = vec![format!("{} sent", r.accepted + r.confirmed_sent)];
    if r.wechat > 0 {
        parts[0].push_str(&format!(" ({} in WeChat)", r.wechat));
    }
    for (n, what) in [
        (r.failed, "failed"),
        (r.deferred, "deferred (limits, provider errors)"),
        (r.uncertain, "uncertain (to be looked up)"),
        (r.waiting_template, "waiting for a template id"),
        (r.confirmed_unsent, "found unsent and due again"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    parts.join(", ")
}

/// Dispatches until nothing due is left, showing progress as `output` says; the totals.
///
/// # Errors
/// A database error of a round (the rounds before it stand).
pub async fn dispatch_reporting(
    dispatcher: &crate::service::reminders::dispatch::Dispatcher,
    output: DispatchOutput,
) -> anyhow::Result<crate::service::reminders::dispatch::RunReport> {
    use crate::service::reminders::dispatch::RunReport;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let db = &dispatcher.db;
    let due = || {
        entity::outbox::Entity::find()
            .filter(entity::outbox::Column::Status.is_in(["pending", "uncertain"]))
            .filter(entity::outbox::Column::DueAt.lte(chrono::Utc::now()))
            .count(db)
    };
    let total = due().await?;
    let (bar, mut lines) = match output {
        DispatchOutput::Bar => {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} messages {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            (Some(bar), None)
        }
        DispatchOutput::Lines { out, every } => (None, Some((out, every.max(1)))),
    };
    let mut sum = RunReport::default();
    let mut next_line = lines.as_ref().map_or(u64::MAX, |(_, every)| *every);
    let started = std::time::Instant::now();
    if let Some((out, _)) = &mut lines {
        writeln!(out, "dispatching: {total} messages due")?;
    }
    loop {
        let round = dispatcher.run_once(chrono::Utc::now()).await?;
        if round.quiet {
            let text = "quiet hours (08:00–21:00 Asia/Shanghai): nothing sent";
            match (&bar, &mut lines) {
                (Some(bar), _) => bar.abandon_with_message(text),
                (_, Some((out, _))) => writeln!(out, "{text}")?,
                _ => {}
            }
            sum.quiet = true;
            return Ok(sum);
        }
        sum.add(&round);
        let done = sum.leased;
        if let Some(bar) = &bar {
            let left = due().await?;
            bar.set_position(total.saturating_sub(left));
            bar.set_message(dispatch_summary(&sum));
        }
        if let Some((out, every)) = &mut lines
            && done >= next_line
        {
            writeln!(
                out,
                "progress: {done} of {total} handled in {:.0?}: {}",
                started.elapsed(),
                dispatch_summary(&sum)
            )?;
            next_line = (done / *every + 1) * *every;
        }
        if round.leased == 0 {
            break;
        }
    }
    let text = dispatch_summary(&sum);
    match (&bar, &mut lines) {
        (Some(bar), _) => bar.finish_with_message(text),
        (_, Some((out, _))) => {
            writeln!(
                out,
                "done in {:.1?}: {} handled; {text}",
                started.elapsed(),
                sum.leased
            )?;
            out.flush()?;
        }
        _ => {}
    }
    Ok(sum)
}

/// `huzhu admin rotate-pii`: the database and the keys only (no migration, no seeding).
async fn rotate_pii(settings: Settings, batch_size: u64) -> anyhow::Result<()> {
    use crate::service::pii_rotation;
    crate::integrations::tls::install_crypto_provider();
    let keys = crate::auth::keys::resolve(&settings)?;
    let vault = crate::auth::keys::vault(&keys)?;
    let db = db::connect(&settings).await?;
    let total = pii_rotation::count_values(&db).await?;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} values {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut done_before = 0u64;
    let mut current = ("", "");
    let mut column_seen = 0u64;
    let report = pii_rotation::rotate(&db, &vault, batch_size, |p| {
        if (p.table, p.column) != current {
            done_before += column_seen;
            current = (p.table, p.column);
        }
        column_seen = p.seen;
        bar.set_position(done_before + p.seen);
        bar.set_message(format!(
            "{}.{} ({} re-encrypted)",
            p.table, p.column, p.resealed
        ));
    })
    .await?;
    bar.finish_and_clear();
    println!(
        "re-encrypted {} of {} values under key {} ({} changed meanwhile and left as written)",
        report.resealed, report.seen, keys.key_id, report.skipped
    );
    Ok(())
}

fn bad(message: String) -> anyhow::Error {
    anyhow::anyhow!(message)
}

async fn admin(task: AdminTask, mut settings: Settings) -> anyhow::Result<()> {
    match task {
        AdminTask::GenSecrets => {
            print!("{}", crate::auth::keys::generate_env_lines());
            return Ok(());
        }
        AdminTask::RotatePii { batch_size } => return rotate_pii(settings, batch_size).await,
        _ => {}
    }
    settings.migrate_on_start = true;
    let state = crate::startup::build_state(settings).await?;
    let txn = crate::db::begin_write(&state.db).await?;
    match task {
        AdminTask::CreateAssociation { name } => {
            let org = organisation::create(&txn, None, OrganisationKind::Association, &name, None)
                .await?;
            audit::record(
                &txn,
                &Actor::Cli,
                "organisation.created",
                ("organisation", Some(&org.pid)),
                json!({"kind": "association", "name": name}),
                None,
            )
            .await?;
            println!("{}", org.pid);
        }
        AdminTask::CreateOrganisation {
            parent,
            kind,
            name,
            head_count,
        } => {
            let kind = OrganisationKind::parse(&kind).ok_or_else(|| {
                bad(format!(
                    "unknown kind {kind}: office | service_point | unit_union"
                ))
            })?;
            let parent = organisation::get_by_pid(&txn, &parent)
                .await?
                .ok_or_else(|| bad(format!("no organisation {parent}")))?;
            let org = organisation::create(&txn, Some(&parent), kind, &name, head_count).await?;
            audit::record(
                &txn,
                &Actor::Cli,
                "organisation.created",
                ("organisation", Some(&org.pid)),
                json!({"kind": kind, "name": name, "parent": parent.pid}),
                None,
            )
            .await?;
            println!("{}", org.pid);
        }
        AdminTask::CreateStaff {
            organisation: org,
            role,
            name,
            login,
        } => {
            let role = Role::parse(&role)
                .filter(|r| r.is_staff())
                .ok_or_else(|| bad(format!("unknown staff role {role}")))?;
            let org = organisation::get_by_pid(&txn, &org)
                .await?
                .ok_or_else(|| bad(format!("no organisation {org}")))?;
            let account = staff::create(&txn, &org, role, &name, &login).await?;
            audit::record(
                &txn,
                &Actor::Cli,
                "staff.created",
                ("staff", Some(&account.pid)),
                json!({"role": role, "login": login}),
                None,
            )
            .await?;
            println!("{}", account.pid);
        }
        AdminTask::Invite { login } => {
            let account = staff::find_by_login(&txn, &login)
                .await?
                .ok_or_else(|| bad(format!("no staff account {login}")))?;
            let issued =
                invitation::issue(&txn, account.id, state.settings.auth.invitation_ttl_hours)
                    .await?;
            audit::record(
                &txn,
                &Actor::Cli,
                "staff.invited",
                ("staff", Some(&account.pid)),
                json!({"expires_at": issued.expires_at}),
                None,
            )
            .await?;
            println!("{}  (valid until {})", issued.code, issued.expires_at);
        }
        AdminTask::GenSecrets | AdminTask::RotatePii { .. } => {}
    }
    txn.commit().await?;
    Ok(())
}
