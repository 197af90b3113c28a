//! A real Redis Cluster on loopback, made with `redis-cli --cluster create`:
//! every node a redis-server with the module loaded, reaped on drop.

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{command, query, Server};

pub struct Cluster {
    pub nodes: Vec<Server>,
}

impl Cluster {
    /// `masters` masters with `replicas` replicas each.
    pub fn start(masters: usize, replicas: usize) -> Cluster {
        let config = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "1000",
            "--appendonly",
            "no",
        ];
        let nodes: Vec<Server> = (0..masters * (1 + replicas))
            .map(|_| Server::start_with(&config))
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        // redis-cli waits for the nodes to agree with no deadline of its own.
        let output = Command::new("timeout")
            .arg("120")
            .arg("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .arg("--cluster-replicas")
            .arg(replicas.to_string())
            .arg("--cluster-yes")
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Cluster { nodes };
        cluster.wait_until_ok();
        cluster
    }

    /// Waits until every running node sees all slots served and every
    /// replica is in sync.
    pub fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            loop {
                if let Ok(mut con) = node.try_connect() {
                    let info: String = command("CLUSTER INFO").query(&mut con).unwrap_or_default();
                    let replication: String = command("INFO replication")
                        .query(&mut con)
                        .unwrap_or_default();
                    let synced = !replication.contains("role:slave")
                        || replication.contains("master_link_status:up");
                    if info.contains("cluster_state:ok")
                        && info.contains("cluster_slots_ok:16384")
                        && synced
                    {
                        break;
                    }
                }
                assert!(Instant::now() < deadline, "cluster did not settle");
                sleep(Duration::from_millis(100));
            }
        }
    }

    /// Waits until every running node routes all 16384 slots to masters
    /// other than the node on `port` (after it failed and a replica took over).
    pub fn wait_until_no_slot_is_served_by(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            loop {
                let slots: Vec<redis::Value> = node
                    .try_connect()
                    .ok()
                    .and_then(|mut con| command("CLUSTER SLOTS").query(&mut con).ok())
                    .unwrap_or_default();
                let mut covered = 0;
                let mut moved_away = true;
                for range in &slots {
                    // [start, end, [ip, port, id, ...], replicas...]
                    let redis::Value::Array(items) = range else {
                        moved_away = false;
                        continue;
                    };
                    match (items.first(), items.get(1), items.get(2)) {
                        (
                            Some(redis::Value::Int(start)),
                            Some(redis::Value::Int(end)),
                            Some(redis::Value::Array(master)),
                        ) => {
                            covered += end - start + 1;
                            moved_away &=
                                master.get(1) != Some(&redis::Value::Int(i64::from(port)));
                        }
                        _ => moved_away = false,
                    }
                }
                if covered == 16384 && moved_away {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} still routes to {port}",
                    node.port
                );
                sleep(Duration::from_millis(100));
            }
        }
    }

    /// Seed addresses for a cluster client.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Server::url).collect()
    }

    /// A node's cluster id.
    pub fn id_of(node: &Server) -> String {
        query(&mut node.connect(), "CLUSTER MYID")
    }

    /// The nodes that are masters now.
    pub fn masters(&self) -> Vec<&Server> {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .filter(|node| {
                node.try_connect()
                    .ok()
                    .and_then(|mut con| command("ROLE").query::<Vec<redis::Value>>(&mut con).ok())
                    .is_some_and(|role| {
                        role.first() == Some(&redis::Value::BulkString(b"master".to_vec()))
                    })
            })
            .collect()
    }
}
