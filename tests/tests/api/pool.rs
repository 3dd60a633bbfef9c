//! The connection pool as `huzhu::db::connect` opens it, on PostgreSQL: a connection going
//! back to the pool is cleaned up (a dropped transaction rolled back, a dropped query's rows
//! drained) without a liveness round trip on every release (vendor/README.md); and the
//! replica's connections to PostgreSQL and Redis send without Nagle's delay; and a connection
//! whose query finished is back in the pool as it is dropped, without a task.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use huzhu::settings::Settings;
use huzhu_tests::harness::{PgDatabase, postgres_services};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait,
};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Everything the client sent, as seen by a TCP relay between the pool and PostgreSQL.
type Sent = Arc<Mutex<Vec<u8>>>;

/// The local ports of the client sockets a relay accepted.
type Clients = Arc<Mutex<Vec<u16>>>;

/// A fresh database behind a relay: the database (dropped at the test's end), its URL through
/// the relay, and what the relay saw.
async fn behind_relay(pg_url: &str) -> (PgDatabase, reqwest::Url, Sent, Clients) {
    let pg = PgDatabase::create(pg_url).await;
    let (url, sent, clients) = relayed(&pg.url, 5432).await;
    (pg, url, sent, clients)
}

/// The service at `url` (`default_port` when it names none) behind a relay: the URL through
/// the relay, and what the relay saw.
async fn relayed(url: &str, default_port: u16) -> (reqwest::Url, Sent, Clients) {
    let mut url = reqwest::Url::parse(url).unwrap();
    let upstream = format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port().unwrap_or(default_port)
    );
    let (port, sent, clients) = relay(upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(port)).unwrap();
    (url, sent, clients)
}

/// A relay on 127.0.0.1 in front of `upstream` ("host:port") recording the client's bytes and
/// each client's port.
async fn relay(upstream: String) -> (u16, Sent, Clients) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent: Sent = Arc::default();
    let record = sent.clone();
    let clients: Clients = Arc::default();
    let seen = clients.clone();
    tokio::spawn(async move {
        while let Ok((client, from)) = listener.accept().await {
            seen.lock().unwrap().push(from.port());
            let server = TcpStream::connect(&upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = client_read.read(&mut buf).await {
                    if n == 0 || server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
            });
        }
    });
    (port, sent, clients)
}

/// Whether this process's IPv4 TCP socket bound to 127.0.0.1:`port` sends without Nagle's
/// delay (`TCP_NODELAY`), found among the process's open descriptors.
fn nodelay_of_local_port(port: u16) -> Option<bool> {
    for entry in std::fs::read_dir("/proc/self/fd").ok()? {
        let Some(fd) = entry
            .ok()
            .and_then(|e| e.file_name().to_str()?.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: `getsockname` and `getsockopt` only write into the buffers given, of the
        // lengths given; a descriptor that is not a socket (or closed since) fails them.
        unsafe {
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::getsockname(fd, (&raw mut addr).cast(), &mut len) != 0
                || i32::from(addr.sin_family) != libc::AF_INET
                || u16::from_be(addr.sin_port) != port
            {
                continue;
            }
            let mut on: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            if libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&raw mut on).cast(),
                &mut len,
            ) == 0
            {
                return Some(on != 0);
            }
        }
    }
    None
}

/// Every client the relay saw (there is one at least) has `TCP_NODELAY`; `connection` names
/// them in the failure ("the pool's connection").
fn assert_every_client_sends_at_once(clients: &Clients, reached: &str, connection: &str) {
    let clients = clients.lock().unwrap().clone();
    assert!(!clients.is_empty(), "{reached}");
    for client in clients {
        assert_eq!(
            nodelay_of_local_port(client),
            Some(true),
            "{connection} from port {client} has TCP_NODELAY"
        );
    }
}

/// sqlx 0.9.0 dropped `TCP_NODELAY` (transact-rs/sqlx#4335): a statement whose message
/// leaves in more than one segment — a roster's thousands of rows in one parameter, a query
/// written out in two TLS records — waits for PostgreSQL's delayed acknowledgement, 40 ms on
/// Linux, before its last segment is sent. Every connection of the pool sends at once.
#[tokio::test]
async fn the_pools_connections_send_without_nagles_delay() {
    let Some((pg_url, _)) = postgres_services() else {
        return;
    };
    let (_pg, url, _, clients) = behind_relay(&pg_url).await;
    let db = pool_of_one(url.as_str()).await;
    assert_eq!(answer(&db, "SELECT CAST(41 + 1 AS BIGINT)").await, 42);
    assert_every_client_sends_at_once(
        &clients,
        "the pool connected through the relay",
        "the pool's connection",
    );
}

/// The replica's Redis connection sends at once too (`startup::redis_connection`).
#[tokio::test]
async fn the_redis_connection_sends_without_nagles_delay() {
    let Some((_, redis_url)) = postgres_services() else {
        return;
    };
    let (url, _, clients) = relayed(&redis_url, 6379).await;
    let mut redis = huzhu::startup::redis_connection(url.as_str())
        .await
        .expect("connect");
    let pong: String = redis::cmd("PING").query_async(&mut redis).await.unwrap();
    assert_eq!(pong, "PONG");
    assert_every_client_sends_at_once(
        &clients,
        "Redis was reached through the relay",
        "the Redis connection",
    );
}

/// How many protocol `Sync` messages ('S', length 4) are in `bytes`: one per round trip the
/// client asks for.
fn syncs(bytes: &[u8]) -> usize {
    bytes.windows(5).filter(|w| *w == b"S\0\0\0\x04").count()
}

/// The product's pool of one connection to `url`.
async fn pool_of_one(url: &str) -> DatabaseConnection {
    let mut settings = Settings::default();
    settings.database.url = Some(SecretString::from(url.to_owned()));
    settings.database.max_connections = 1;
    huzhu::db::connect(&settings).await.expect("connect")
}

async fn answer(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect(sql)
        .expect("a row")
        .try_get_by_index::<i64>(0)
        .expect("an integer")
}

#[tokio::test]
async fn a_released_connection_is_not_pinged_and_comes_back_clean() {
    let Some((pg_url, _)) = postgres_services() else {
        return;
    };
    let (pg, mut url, sent, _) = behind_relay(&pg_url).await;
    // In clear, so the relay can read the protocol.
    url.query_pairs_mut().append_pair("sslmode", "disable");
    let db = pool_of_one(url.as_str()).await;

    // A statement already prepared on the connection is one round trip: Bind, Execute, Sync.
    // Releasing the connection adds none (sqlx pings it, a second Sync, unless patched).
    for _ in 0..2 {
        assert_eq!(answer(&db, "SELECT CAST(41 + 1 AS BIGINT)").await, 42);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = syncs(&sent.lock().unwrap());
    assert_eq!(answer(&db, "SELECT CAST(41 + 1 AS BIGINT)").await, 42);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        syncs(&sent.lock().unwrap()) - before,
        1,
        "one query, one round trip: the release must not ping"
    );

    // A transaction dropped without commit is rolled back before the connection is reused:
    // the next statement on the only connection is outside any transaction.
    db.execute_unprepared("CREATE TABLE pool_probe (x BIGINT)")
        .await
        .unwrap();
    {
        let txn = db.begin().await.unwrap();
        txn.execute_unprepared("INSERT INTO pool_probe VALUES (1)")
            .await
            .unwrap();
        drop(txn);
    }
    db.execute_unprepared("INSERT INTO pool_probe VALUES (2)")
        .await
        .unwrap();
    let other = Database::connect(&pg.url).await.unwrap();
    assert_eq!(
        answer(
            &other,
            "SELECT CAST(COALESCE(SUM(x), 0) AS BIGINT) FROM pool_probe"
        )
        .await,
        2,
        "the dropped transaction's row is gone and the next one is committed"
    );

    // A query dropped while its rows were arriving leaves nothing behind for the next one.
    let slow = db.query_all_raw(Statement::from_string(
        DbBackend::Postgres,
        "SELECT CAST(g AS BIGINT) FROM generate_series(1, 200000) g, pg_sleep(0.3)",
    ));
    assert!(
        tokio::time::timeout(Duration::from_millis(50), slow)
            .await
            .is_err(),
        "the slow query was cut off"
    );
    assert_eq!(answer(&db, "SELECT CAST(7 AS BIGINT)").await, 7);
    assert_eq!(answer(&db, "SELECT CAST(8 AS BIGINT)").await, 8);

    db.close().await.ok();
    other.close().await.ok();
}

#[tokio::test]
async fn a_connection_whose_query_finished_is_back_in_the_pool_when_it_is_dropped() {
    let Some((pg_url, _)) = postgres_services() else {
        return;
    };
    let pg = PgDatabase::create(&pg_url).await;
    let db = pool_of_one(&pg.url).await;
    let pool = db.get_postgres_connection_pool();
    // On this test's one thread nothing else runs until it waits: a release left to a task
    // (sqlx's own `Drop`) has not happened when the query's future returns.
    for round in 0..3 {
        assert_eq!(answer(&db, "SELECT CAST(41 + 1 AS BIGINT)").await, 42);
        assert_eq!(
            (pool.size(), pool.num_idle()),
            (1, 1),
            "round {round}: the connection is idle in the pool as the query returns"
        );
    }
    // One that has to wait (a dropped transaction's ROLLBACK) is still released, by a task.
    {
        let txn = db.begin().await.unwrap();
        txn.execute_unprepared("SELECT 1").await.unwrap();
        drop(txn);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pool.num_idle(), 1, "released after its ROLLBACK");
    assert_eq!(answer(&db, "SELECT CAST(7 AS BIGINT)").await, 7);
    db.close().await.ok();
}
