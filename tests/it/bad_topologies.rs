//! A corpus of bad topologies: each must be rejected with exit code 1, a message that names the
//! exact place (file:line:col) or object, and nothing written or started.

use crate::support::notif_infra;

/// (case, topology, what the message must contain)
const CASES: &[(&str, &str, &[&str])] = &[
    (
        "yaml syntax",
        "name: dev\nregions:\n  main:\n    nodes: 3\n  - west\n",
        &["did not find expected key", "bad.yaml:5:5"],
    ),
    (
        "string where a list belongs",
        "name: [dev]\nregions: {}\n",
        &["expected string scalar", "bad.yaml:1:7"],
    ),
    (
        "every problem of shape at once, each where it is",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstrem: true\nstreams:\n  S:\n    subjectz: [a]\n    storage: disk\n",
        &[
            "unknown field `jetstrem`",
            "bad.yaml:5:5",
            "did you mean `jetstream`?",
            "unknown field `subjectz` in `streams.S`",
            "bad.yaml:8:5",
            "`streams.S.storage` is `disk`, expected one of file, memory",
            "bad.yaml:9:14",
        ],
    ),
    (
        "wrong type for nodes",
        "name: dev\nregions:\n  main:\n    nodes: three\n",
        &["invalid type: string", "expected a node count or a list of nodes", "bad.yaml:4:5"],
    ),
    (
        "a monitoring threshold for a consumer the topology does not have",
        "name: dev\nregions:\n  main:\n    nodes: 1\n    jetstream: true\nstreams:\n  S: { subjects: [a] }\nconsumers:\n  - { durable: worker, stream: S }\nmonitoring:\n  consumers:\n    S/wroker: 10\n",
        &[
            "`S/wroker` is not a consumer of this topology",
            "did you mean `S/worker`?",
            "bad.yaml:12:5",
        ],
    ),
    (
        "a monitoring address that is no address",
        "name: dev\nregions:\n  main:\n    nodes: 1\nmonitoring:\n  listen: localhost\n",
        &["`localhost` is not an address to listen on", "bad.yaml:6:11"],
    ),
    (
        "a key twice in one mapping",
        "name: dev\nregions:\n  main:\n    nodes: 1\nregions:\n  west:\n    nodes: 1\n",
        &[
            "duplicate mapping key: regions",
            "a key appears twice in one mapping",
            "bad.yaml:5:1",
        ],
    ),
    (
        "wrong type for a port",
        "name: dev\nregions:\n  main:\n    nodes:\n      - name: a\n        ports: { client: 70000 }\n",
        &["`client` is `70000`: a port is a number from 1 to 65535", "bad.yaml:6:26"],
    ),
    (
        "a fraction where a whole number belongs",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  S:\n    subjects: [a]\n    replicas: 3.5\n",
        &["`replicas` is `3.5`: it must be a whole number, 0 or more", "bad.yaml:9:15"],
    ),
    (
        "a number too large for its field",
        "name: dev\ndefaults:\n  gateway_seeds: 99999999999\nregions:\n  main:\n    nodes: 3\n",
        &[
            "`gateway_seeds` is `99999999999`: it must be a whole number from 0 to 4294967295",
            "bad.yaml:3:18",
        ],
    ),
    (
        "route compression nats-server refuses at start",
        "name: dev\ndefaults:\n  compression: s2\nregions:\n  main:\n    nodes: 3\n",
        &[
            "nats-server refuses route compression `s2` at start",
            "bad.yaml:3:16",
            "write `s2_fast`",
        ],
    ),
    (
        "a literal encryption key, a leaf in the regions' domain, a mapping to a missing wildcard",
        "name: dev\ndefaults:\n  jetstream:\n    domain: hub\n    encryption: { key: hunter2 }\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nleafnodes:\n  edge:\n    hub: main\n    jetstream: { domain: hub }\naccounts:\n  A:\n    mappings: { \"a.*\": \"b.{{wildcard(2)}}\" }\n",
        &[
            "the JetStream encryption key must be an environment reference",
            "bad.yaml:5:24",
            "leafnode `edge` uses the regions' JetStream domain `hub`",
            "bad.yaml:13:26",
            "invalid mapping destination `b.{{wildcard(2)}}`: `{{wildcard(2)}}` names wildcard 2, but `a.*` has 1",
        ],
    ),
    (
        "a leafnode stream with replicas, a leafnode without JetStream, sourcing regions without a domain",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nleafnodes:\n  edge:\n    hub: main\n    jetstream: { domain: edge }\n  bare:\n    hub: main\nstreams:\n  ORDERS: { subjects: [\"orders.>\"] }\n  CACHE: { leafnode: edge, replicas: 3, sources: [{ name: ORDERS }] }\n  LOCAL: { leafnode: bare, subjects: [\"local.>\"] }\n  ELSEWHERE: { leafnode: egde, subjects: [\"x.>\"] }\n",
        &[
            "a stream on leafnode `edge` cannot have 3 replicas: a leafnode is one server",
            "bad.yaml:14:38",
            "stream `CACHE` on leafnode `edge` takes `ORDERS` from the regions, which have no JetStream domain",
            "leafnode `bare` runs no JetStream to hold the stream",
            "bad.yaml:15:22",
            "unknown leafnode `egde`",
            "did you mean `edge`?",
        ],
    ),
    (
        "a lame duck shorter than nats-server accepts",
        "name: dev\ndefaults:\n  lame_duck: { duration: 5s }\nregions:\n  main:\n    nodes: 3\n",
        &[
            "a lame-duck duration of 5s is shorter than nats-server accepts",
            "bad.yaml:3:26",
            "minimum is 30 seconds",
        ],
    ),
    (
        "a tab indenting a line",
        "name: dev\nregions:\n  main:\n    # one\n    # two\n    nodes: 3\n\tjetstream: true\n",
        &["found a tab", "bad.yaml:7:1", "replace the tab with spaces"],
    ),
    (
        "a flow naming an unknown user, site, stream and consumer",
        "name: dev\nregions:\n  east:\n    nodes: 3\n    jetstream: true\naccounts:\n  APP:\n    jetstream: true\n    users:\n      - { user: writer, password: \"${W}\" }\nstreams:\n  ORDERS: { account: APP, subjects: [\"orders.>\"] }\nconsumers:\n  - { durable: billing, stream: ORDERS }\nflows:\n  f:\n    publish: { user: writter, at: eats, subject: orders.created }\n    reaches:\n      - stream: ORDER\n      - consumer: ORDERS/biling\n",
        &[
            "unknown user `writter`",
            "bad.yaml:17:22",
            "did you mean `writer`?",
            "unknown region or leafnode `eats`",
            "bad.yaml:17:35",
            "did you mean `east`?",
            "unknown stream `ORDER`",
            "bad.yaml:19:17",
            "did you mean `ORDERS`?",
            "unknown consumer `ORDERS/biling`",
            "bad.yaml:20:19",
            "did you mean `ORDERS/billing`?",
        ],
    ),
    (
        "a flow publishing on a wildcard, with an empty reaches",
        "name: dev\nregions:\n  east:\n    nodes: 3\nflows:\n  f:\n    publish: { at: east, subject: \"orders.*\" }\n    reaches: []\n",
        &[
            "`orders.*` is not a publish subject",
            "bad.yaml:7:35",
            "flow `f` has an empty `reaches`",
            "bad.yaml:8:14",
        ],
    ),
    (
        "a flow a deny rule blocks, and one that crosses into another tenant",
        "name: dev\nregions:\n  east:\n    nodes: 3\nleafnodes:\n  edge:\n    hub: east\n    account: A\n    deny_import: [\"orders.>\"]\naccounts:\n  A:\n    exports: [{ stream: \"orders.>\" }]\n    users: [{ user: a, password: \"${A}\" }]\n  B:\n    imports: [{ stream: \"orders.>\", from: A }]\n    users: [{ user: b, password: \"${B}\" }]\nflows:\n  to-edge:\n    publish: { user: a, at: east, subject: orders.created }\n    reaches:\n      - subscriber: { user: a, at: edge, subject: \"orders.>\" }\n    never:\n      - subscriber: { user: b, at: east, subject: \">\" }\n",
        &[
            "flow `to-edge`: `orders.created` published by A/a at region `east` cannot reach subscriber A/a at edge on orders.>",
            "bad.yaml:9:19 (flow `to-edge`)",
            "deny_import `orders.>` of leafnode `edge` keeps it in hub region `east`",
            "reaches, which it must never reach, subscriber B/b at east on >",
            "bad.yaml:15:25 (flow `to-edge`)",
            "account `B` imports stream `orders.>` from `A`",
        ],
    ),
    (
        "unknown key in a region",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstrem: true\n",
        &["unknown field `jetstrem`", "bad.yaml:5:5", "did you mean `jetstream`?"],
    ),
    (
        "unknown top-level key",
        "name: dev\nregion:\n  main:\n    nodes: 3\n",
        &["unknown field `region`", "bad.yaml:2:1", "did you mean `regions`?"],
    ),
    (
        "unknown key in a node",
        "name: dev\nregions:\n  main:\n    nodes:\n      - name: a\n        hots: 10.0.0.1\n",
        &["unknown field `hots`", "bad.yaml:6:9", "did you mean `host`?"],
    ),
    ("missing regions", "name: dev\n", &["missing field `regions`"]),
    (
        "duplicate region",
        "name: dev\nregions:\n  main:\n    nodes: 3\n  main:\n    nodes: 2\n",
        &["duplicate mapping key", "bad.yaml:5:3"],
    ),
    (
        "duplicate node across regions",
        "name: dev\nregions:\n  east:\n    nodes:\n      - name: n1\n  west:\n    nodes:\n      - name: n1\n",
        &["duplicate server name `n1`", "bad.yaml:8:15", "already defined at line 5"],
    ),
    (
        "port clash on one host",
        "name: dev\nregions:\n  main:\n    nodes:\n      - { name: a, host: box }\n      - { name: b, host: box }\n",
        &["port 4222 on host `box` is used twice", "bad.yaml:6:17 (node `b`)"],
    ),
    (
        "leafnode hub does not exist",
        "name: dev\nregions:\n  east:\n    nodes: 3\nleafnodes:\n  edge:\n    hub: eats\n",
        &["hub region `eats`, which does not exist", "bad.yaml:7:10", "did you mean `east`?"],
    ),
    (
        "leafnode bound to unknown account",
        "name: dev\nregions:\n  east:\n    nodes: 3\nleafnodes:\n  edge:\n    hub: east\n    account: APPP\naccounts:\n  APP: {}\n",
        &["account `APPP`, which is not declared", "bad.yaml:8:14", "did you mean `APP`?"],
    ),
    (
        "leafnode bound to the system account",
        "name: dev\nregions:\n  east:\n    nodes: 3\nleafnodes:\n  edge:\n    hub: east\n    account: SYS\naccounts:\n  SYS: { system: true }\n",
        &["binds to the system account `SYS`", "bad.yaml:8:14"],
    ),
    (
        "two system accounts",
        "name: dev\nregions:\n  main:\n    nodes: 3\naccounts:\n  SYS: { system: true }\n  SYS2: { system: true }\n",
        &["more than one system account: `SYS` and `SYS2`", "bad.yaml:7:19"],
    ),
    (
        "invalid subject in permissions",
        "name: dev\nregions:\n  main:\n    nodes: 3\naccounts:\n  APP:\n    users:\n      - user: u\n        password: ${U_PASS}\n        permissions:\n          publish: [\"orders..created\"]\n",
        &["invalid subject `orders..created`", "bad.yaml:11:21", "user `u` of account `APP`"],
    ),
    (
        "invalid subject in a deny rule",
        "name: dev\nregions:\n  east:\n    nodes: 3\nleafnodes:\n  edge:\n    hub: east\n    deny_import: [\"secret.>.x\"]\n",
        &[
            "invalid subject `secret.>.x`",
            "`>` must be the last token",
            "bad.yaml:8:19",
            "leafnode `edge`",
        ],
    ),
    (
        "literal password",
        "name: dev\nregions:\n  main:\n    nodes: 3\naccounts:\n  APP:\n    users:\n      - user: u\n        password: hunter2\n",
        &["literal password in the topology", "bad.yaml:9:19", "${WRITER_PASS}"],
    ),
    (
        "duplicate user across accounts",
        "name: dev\nregions:\n  main:\n    nodes: 3\naccounts:\n  A:\n    users:\n      - { user: u, password: \"${P1}\" }\n  B:\n    users:\n      - { user: u, password: \"${P2}\" }\n",
        &["duplicate user `u`", "bad.yaml:11:17", "account `A`"],
    ),
    (
        "region without nodes",
        "name: dev\nregions:\n  main:\n    nodes: 0\n",
        &["region `main` has no nodes", "bad.yaml:4:12"],
    ),
    (
        "bad duration",
        "name: dev\ndefaults:\n  lame_duck:\n    duration: 30x\nregions:\n  main:\n    nodes: 3\n",
        &["`30x` is not a duration", "bad.yaml:4:15"],
    ),
    (
        "bad size",
        "name: dev\ndefaults:\n  max_payload: 8XB\nregions:\n  main:\n    nodes: 3\n",
        &["unknown size unit `XB`", "bad.yaml:3:16"],
    ),
    (
        "leaf JetStream without a domain",
        "name: dev\nregions:\n  east:\n    nodes: 3\nleafnodes:\n  edge:\n    hub: east\n    jetstream: {}\n",
        &["runs JetStream without a domain", "bad.yaml:6:3"],
    ),
    (
        "gateways and leafnodes without a system account",
        "name: dev\nregions:\n  east:\n    nodes: 3\n  west:\n    nodes: 3\nleafnodes:\n  edge:\n    hub: east\n",
        &["gateways and leafnodes together need a system account", "bad.yaml:1:7"],
    ),
    (
        "invalid region name",
        "name: dev\nregions:\n  \"us west\":\n    nodes: 3\n",
        &["invalid region name `us west`", "bad.yaml:3:3"],
    ),
    (
        "overlapping stream subjects",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  A:\n    subjects: [\"a.>\"]\n  B:\n    subjects: [a.b]\n",
        &["stream `B` subject `a.b` overlaps `a.>` of stream `A`", "bad.yaml:9:3", "10065"],
    ),
    (
        "stream replicas above the region's nodes",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  A:\n    replicas: 5\n",
        &["stream `A` wants 5 replicas but region `main` has 3 node(s)", "bad.yaml:7:3"],
    ),
    (
        "stream replicas above five",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  A:\n    replicas: 7\n",
        &["7 replicas: nats-server allows 1 to 5", "bad.yaml:8:15"],
    ),
    (
        "placement in an unknown region",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  A:\n    placement: { region: mian }\n",
        &[
            "placed in region `mian`, which does not exist",
            "did you mean `main`?",
            "bad.yaml:7:3",
        ],
    ),
    (
        "placement on tags no node has",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  A:\n    placement: { tags: [ssd] }\n",
        &["placed on tags [ssd], which no node of region `main` has", "bad.yaml:7:3"],
    ),
    (
        "workqueue consumers with overlapping filters",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  Q:\n    subjects: [q.>]\n    retention: workqueue\nconsumers:\n  - durable: a\n    stream: Q\n    filter_subject: q.>\n  - durable: b\n    stream: Q\n    filter_subject: q.x\n",
        &[
            "consumers `a` and `b` of workqueue stream `Q` have overlapping filters",
            "bad.yaml:14:14",
        ],
    ),
    (
        "workqueue consumers that nats-server refuses",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  Q:\n    subjects: [q.>]\n    retention: workqueue\nconsumers:\n  - durable: a\n    stream: Q\n    filter_subject: q.a\n    deliver_policy: new\n  - durable: b\n    stream: Q\n    filter_subject: q.b\n    ack_policy: none\n",
        &[
            "consumer `a` of workqueue stream `Q` must deliver all messages",
            "bad.yaml:11:14",
            "consumer `b` of workqueue stream `Q` must acknowledge each message",
            "bad.yaml:15:14",
        ],
    ),
    (
        "consumer on an unknown stream",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  EVENTS:\n    subjects: [e.>]\nconsumers:\n  - durable: c\n    stream: EVENT\n",
        &[
            "consumer `c` is on stream `EVENT`, which is not declared",
            "did you mean `EVENTS`?",
            "bad.yaml:11:13",
        ],
    ),
    (
        "bad stream duration and size",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  A:\n    max_age: 7 days\n    max_bytes: 1ZB\n",
        &[
            "`7 days` is not a duration",
            "bad.yaml:8:14",
            "unknown size unit `ZB`",
            "bad.yaml:9:16",
        ],
    ),
    (
        "invalid stream subject",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  A:\n    subjects: [\"a..b\"]\n",
        &["invalid subject `a..b`", "bad.yaml:8:16"],
    ),
    (
        "unknown retention",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  A:\n    retention: forever\n",
        &["unknown variant `forever`", "bad.yaml:8:16"],
    ),
    (
        "stream in an account without JetStream",
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: true\naccounts:\n  APP:\n    users: []\nstreams:\n  A:\n    account: APP\n",
        &["stream `A` is in account `APP`, which does not have JetStream", "bad.yaml:11:14"],
    ),
    (
        "max_bytes above the region's store",
        "name: dev\ndefaults:\n  jetstream: { max_file_store: 1GB }\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  A:\n    max_bytes: 10GB\n",
        &[
            "stream `A` wants max_bytes 10737418240 but the servers of region `main` store at most 1073741824",
            "bad.yaml:9:3",
        ],
    ),
    (
        "streams that fit one by one but not together",
        "name: dev\ndefaults:\n  jetstream: { max_file_store: 50GB }\nregions:\n  main:\n    nodes: 3\n    jetstream: true\nstreams:\n  A: { max_bytes: 40GB, replicas: 3 }\n  B: { max_bytes: 40GB, replicas: 3 }\n  C: { max_bytes: 1GB, storage: memory }\n",
        &[
            "the file stores of region `main` cannot hold what its objects declare: 257698037760 bytes, and its servers (main-1, main-2, main-3) store 53687091200 each, 161061273600 in all",
            "stream `A` 128849018880 (max_bytes 42949672960 x 3 replica(s))",
            "bad.yaml:9:3",
            "raise the `max_file_store` of region `main`",
        ],
    ),
    (
        "several problems at once",
        "name: dev\nregions:\n  east:\n    nodes: 0\nleafnodes:\n  edge:\n    hub: nowhere\n",
        &[
            "region `east` has no nodes",
            "bad.yaml:4:12",
            "hub region `nowhere`",
            "bad.yaml:7:10",
            "2 error(s)",
        ],
    ),
    (
        "import of something not exported",
        "name: t\nregions:\n  main:\n    nodes: 1\noperator:\n  name: op\naccounts:\n  SYS: { system: true }\n  A:\n    exports:\n      - stream: \"orders.>\"\n  B:\n    imports:\n      - stream: \"billing.>\"\n        from: A\n",
        &[
            "account `B` imports stream `billing.>` from `A`, which does not export it",
            "bad.yaml:14:17 (account `B`)",
        ],
    ),
    (
        "import of an export meant for another account",
        "name: t\nregions:\n  main:\n    nodes: 1\noperator:\n  name: op\naccounts:\n  SYS: { system: true }\n  A:\n    exports:\n      - stream: \"orders.>\"\n        to: [C]\n  B:\n    imports:\n      - stream: \"orders.>\"\n        from: A\n  C: {}\n",
        &[
            "account `A` exports `orders.>` only to C, not to `B`",
            "bad.yaml:15:17",
            "add `B` to the export's `to:` list",
        ],
    ),
    (
        "overlapping imports",
        "name: t\nregions:\n  main:\n    nodes: 1\noperator:\n  name: op\naccounts:\n  SYS: { system: true }\n  A:\n    exports:\n      - stream: \"orders.>\"\n      - stream: \"orders.eu.>\"\n  B:\n    imports:\n      - stream: \"orders.>\"\n        from: A\n      - stream: \"orders.eu.>\"\n        from: A\n",
        &[
            "imports `orders.eu.>` and `orders.>` of account `B` overlap",
            "bad.yaml:17:17",
            "the import at line 15",
        ],
    ),
    (
        "password in operator mode",
        "name: t\nregions:\n  main:\n    nodes: 1\noperator:\n  name: op\naccounts:\n  SYS: { system: true }\n  A:\n    users:\n      - user: u\n        password: ${P}\n",
        &["a password in operator mode", "bad.yaml:12:19 (user `u` of account `A`)"],
    ),
    (
        "operator without system account",
        "name: t\nregions:\n  main:\n    nodes: 1\noperator:\n  name: op\naccounts:\n  A:\n    users:\n      - user: u\n",
        &["operator mode needs a system account", "bad.yaml:6:3"],
    ),
    (
        "https monitoring without client TLS",
        "name: t\nregions:\n  main:\n    nodes: 1\ntls:\n  monitor: true\n",
        &["https monitoring needs TLS on the client listener", "bad.yaml:6:12"],
    ),
    (
        "user security options that cannot apply",
        "name: t\nregions:\n  main:\n    nodes: 1\naccounts:\n  A:\n    users:\n      - user: u\n        password: ${P}\n        client_cert: true\n        bearer: true\n        allowed_connection_types: [STANDART]\n",
        &[
            "asks for a client certificate, but clients do not use TLS",
            "bad.yaml:8:15",
            "`bearer` needs operator mode",
            "bad.yaml:11:17",
            "unknown connection type `STANDART`",
            "bad.yaml:12:36",
            "did you mean `STANDARD`?",
        ],
    ),
    (
        "import from and export to unknown accounts",
        "name: t\nregions:\n  main:\n    nodes: 1\noperator:\n  name: op\naccounts:\n  SYS: { system: true }\n  A:\n    imports:\n      - stream: \"x.>\"\n        from: Z\n    exports:\n      - service: \"help\"\n        to: [Q]\n",
        &[
            "account `Z` is not declared",
            "bad.yaml:12:15",
            "account `Q` is not declared",
            "bad.yaml:15:14",
        ],
    ),
    (
        "names Kubernetes cannot take",
        "name: t\nregions:\n  us_east:\n    nodes: 1\nleafnodes:\n  Edge_1: { hub: us_east }\nkubernetes:\n  namespace: Prod\n  memory: 4 GB\n",
        &[
            "`us_east` cannot name a Kubernetes region",
            "bad.yaml:3:3",
            "`Edge_1` cannot name a Kubernetes leafnode",
            "bad.yaml:6:3",
            "`Prod` cannot name a Kubernetes namespace",
            "bad.yaml:8:14",
            "`4 GB` is not a Kubernetes quantity",
            "bad.yaml:9:11",
        ],
    ),
    (
        "WireGuard address clash, outside the network, shared endpoint port, host beside a VPN address",
        "name: t\nwireguard:\n  network: 10.0.0.0/16\nregions:\n  main:\n    nodes:\n      - { name: a, wireguard: { address: 10.0.0.1, endpoint: 192.0.2.1 } }\n      - { name: b, wireguard: { address: 10.0.0.1, endpoint: 192.0.2.1 } }\n      - { name: c, wireguard: { address: 10.9.0.1, endpoint: 192.0.2.3 }, host: c.example }\n",
        &[
            "nodes `a` and `b` share the WireGuard address 10.0.0.1",
            "bad.yaml:8:42",
            "nodes `a` and `b` both listen for WireGuard on 192.0.2.1:51820",
            "bad.yaml:8:62",
            "10.9.0.1 is outside the WireGuard network 10.0.0.0/16",
            "bad.yaml:9:42",
            "node `c` is dialled at `c.example` but its WireGuard address is 10.9.0.1",
        ],
    ),
    (
        "WireGuard address without a mesh",
        "name: t\nregions:\n  main:\n    nodes:\n      - { name: a, wireguard: { address: 10.0.0.1, endpoint: 192.0.2.1 } }\n",
        &[
            "node `a` has a WireGuard address but the topology declares no mesh",
            "bad.yaml:5:31",
        ],
    ),
    (
        "ssh: a shared address, relative paths, a bad variable name",
        "name: t\nssh:\n  address: 192.0.2.9\n  nats_server: bin/nats-server\n  env: { 1PATH: /bin }\nregions:\n  main:\n    nodes:\n      - { name: a, ssh: { config_dir: etc/nats } }\n",
        &[
            "the top-level `ssh:` cannot name an address",
            "bad.yaml:3:12",
            "`nats_server` must be an absolute path on the host, not `bin/nats-server`",
            "bad.yaml:4:16 (node `a`)",
            "`1PATH` is not an environment variable name",
            "bad.yaml:5:10",
            "`config_dir` must be an absolute path on the host, not `etc/nats`",
            "bad.yaml:9:39 (node `a`)",
        ],
    ),
];

/// Runs `args` on the case's file in a fresh directory; returns what is wrong with the rejection.
fn rejection_problems(case: &str, yaml: &str, expect: &[&str], args: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), yaml).unwrap();
    let out = notif_infra(dir.path()).args(args).arg("bad.yaml").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    if out.status.code() != Some(1) {
        problems.push(format!("{case} ({args:?}): exit code {:?}", out.status.code()));
    }
    for e in expect.iter().filter(|e| !stderr.contains(*e)) {
        problems.push(format!("{case} ({args:?}): expected `{e}` in:\n{stderr}"));
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "bad.yaml")
        .collect();
    if !left.is_empty() {
        problems.push(format!("{case} ({args:?}): wrote {left:?}"));
    }
    problems
}

fn assert_all_rejected(args: &[&[&str]]) {
    let problems: Vec<String> = CASES
        .iter()
        .flat_map(|(case, yaml, expect)| args.iter().flat_map(move |a| rejection_problems(case, yaml, expect, a)))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_bad_topology_is_rejected_by_validate_with_its_location() {
    assert!(CASES.len() >= 20);
    assert_all_rejected(&[&["validate"]]);
}

/// Hostile sizes: the error shows the part of a 200,000-character line around the column, and a
/// file of two million comment lines names the limit it hit, in words, and the file's size.
#[test]
fn huge_lines_and_files_get_short_errors_in_words() {
    let long = format!(
        "name: dev\nregions:\n  main:\n    nodes: 3\n    jetstream: {}\n",
        "x".repeat(200_000)
    );
    let comments = format!("name: dev\n{}regions:\n  main:\n    nodes: 3\n", "# comment\n".repeat(2_000_000));
    for (case, yaml, expect) in [
        ("long line", long, &["bad.yaml:5:5", "(200005 characters)", "jetstream: xxxx"][..]),
        (
            "two million comment lines",
            comments,
            &[
                "the topology file is too large to read: more than 1000000 YAML items",
                "the file is 20.0 MB, 2000004 lines",
            ][..],
        ),
    ] {
        let problems = rejection_problems(case, &yaml, expect, &["validate"]);
        assert!(
            problems.iter().all(|p| p.len() < 4000),
            "{case}: the error is not short: {} bytes",
            problems[0].len()
        );
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.yaml"), &yaml).unwrap();
        let out = notif_infra(dir.path()).args(["validate", "bad.yaml"]).output().unwrap();
        assert!(out.stderr.len() < 2000, "{case}: {} bytes of error", out.stderr.len());
    }
}

#[test]
fn render_and_apply_write_and_start_nothing_for_bad_topologies() {
    // apply fails before it looks for nats-server or starts anything.
    assert_all_rejected(&[&["render"], &["apply"]]);
}

#[test]
fn unset_environment_variable_is_an_error_for_the_local_target() {
    let yaml = "name: dev\nregions:\n  main:\n    nodes: 3\naccounts:\n  APP:\n    users:\n      - user: u\n        password: ${NOTIF_TEST_UNSET_PASS}\n";
    let expect: &[&str] = &[
        "environment variable `NOTIF_TEST_UNSET_PASS` is not set",
        "bad.yaml:9:19",
        "user `u` of account `APP`",
    ];
    for args in [&["validate", "--target", "local"][..], &["apply"], &["plan"]] {
        let problems = rejection_problems("unset env", yaml, expect, args);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

#[test]
fn a_small_jetstream_region_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.yaml"),
        "name: dev\nregions:\n  main:\n    nodes: 2\n    jetstream: true\nleafnodes:\n  edge:\n    hub: main\n    deny_import: [\">\"]\n",
    )
    .unwrap();
    // Every command that reads the topology shows its warnings, and still does its work.
    for (args, exit) in [
        (&["validate", "t.yaml"][..], 0),
        (&["render", "t.yaml", "--out", "o"], 0),
        (&["plan", "t.yaml"], 2),
    ] {
        let out = notif_infra(dir.path()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(exit), "{args:?}: {stderr}");
        assert!(
            stderr.contains("warning: region `main` runs JetStream on 2 node(s)"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("t.yaml:5:16"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("warning: leafnode `edge` imports nothing from hub region `main`"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("t.yaml:9:19"), "{args:?}: {stderr}");
    }
    let out = notif_infra(dir.path()).args(["plan", "t.yaml", "-o", "json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["warnings"][0]["loc"]["line"], 5);
    assert_eq!(v["plan"]["servers"].as_array().unwrap().len(), 3);
    assert!(!dir.path().join(".notif-infra").exists(), "plan starts and writes nothing");
}

#[test]
fn validate_json_lists_every_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.yaml"),
        "name: dev\nregions:\n  east:\n    nodes: 0\nleafnodes:\n  edge:\n    hub: eats\n",
    )
    .unwrap();
    let out = notif_infra(dir.path()).args(["validate", "t.yaml", "-o", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let diags = v["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 2);
    assert_eq!(diags[0]["loc"]["line"], 4);
    assert_eq!(diags[1]["loc"]["line"], 7);
    assert_eq!(diags[1]["help"], "did you mean `east`?");
}

/// With `-o json`, a failing command still answers in JSON (a format version, the error's kind,
/// the diagnostics with their places), and FILE defaults to `topology.yaml`.
#[test]
fn machine_output_on_error_and_the_default_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("topology.yaml"), "name: dev\nregions:\n  main:\n    nodez: 3\n").unwrap();
    let out = notif_infra(dir.path()).args(["plan", "-o", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["format_version"], 1);
    assert_eq!(report["ok"], false);
    assert_eq!(report["error"]["kind"], "invalid_topology");
    let first = &report["diagnostics"][0];
    assert!(first["message"].as_str().unwrap().contains("unknown field `nodez`"), "{report:#}");
    assert_eq!(first["loc"], serde_json::json!({"line": 4, "col": 5}), "{report:#}");
    assert!(!dir.path().join(".notif-infra").exists(), "nothing written");
}
