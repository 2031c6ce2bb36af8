//! The Node.js apps people bring besides npm's: pnpm, Yarn classic and Yarn
//! Berry apps (their managers npm-installed from the npm registry, their
//! one dependency from it too), an app with no package.json, and a Vite
//! front end built by node and served by cascade/static-site with no
//! Node.js in the image. Each image runs under bwrap and answers over
//! loopback; each rebuild with no change reuses every layer and gives the
//! same digest.

use serde_json::Value;

use crate::node::Fixture;
use crate::support::*;

/// A response's body.
fn content(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map_or(response, |(_, body)| body)
}

fn run(f: &Fixture, out: &str) -> String {
    let layout = f.tmp.path().join(out);
    validate(&layout, "app");
    let config = skopeo_config(&layout, "app");
    let bundle = unpack(&layout, "app", &f.tmp.path().join(format!("run-{out}")));
    run_and_get(&bundle, &config)
}

fn layer_names(report: &Value) -> Vec<String> {
    report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect()
}

/// `name`'s fixture and the arguments that reach the npm registry; `None`
/// where this host lacks what that needs (each callee says which).
fn with_registry(name: &str) -> Option<(Fixture, Vec<String>)> {
    Some((Fixture::with_app(name)?, from_registries()?))
}

/// Build `name` with registry access, run it, expect `hello`, and rebuild
/// it unchanged: every layer reused, the same digest, no tool run; then
/// cold again from an empty cache: the same digest.
fn registry_app(name: &str, hello: &str, manager_call: &str) {
    let Some((f, extra)) = with_registry(name) else {
        return;
    };
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let cold = f.build_with("cache", "out", &extra);
    let used = calls(&cold);
    assert!(
        used.iter()
            .any(|u| u.starts_with("\"exec:node\"") && u.contains(manager_call)),
        "{used:?}"
    );
    let body = run(&f, "out");
    assert_eq!(
        content(&body),
        format!("{hello}, is-number says true, node v{}\n", f.node.version),
        "{body}"
    );
    let again = f.build_with("cache", "out", &extra);
    assert_eq!(again["digest"], cold["digest"], "{cold:#}\n{again:#}");
    assert!(
        calls(&again).iter().all(|c| !c.starts_with("\"exec")),
        "{:?}",
        calls(&again)
    );
    for layer in again["layers"].as_array().unwrap() {
        assert_eq!(layer["reused"], true, "{layer}");
    }
    // Built anew with an empty cache (another machine, say): the same image,
    // whatever the manager wrote of its own state.
    let elsewhere = f.build_with("cache-elsewhere", "out-elsewhere", &extra);
    assert_eq!(
        elsewhere["digest"], cold["digest"],
        "{cold:#}\n{elsewhere:#}"
    );
}

#[test]
fn a_pnpm_app_installs_with_the_pinned_pnpm() {
    registry_app(
        "node-pnpm",
        "hello from pnpm",
        "install --frozen-lockfile --prod",
    );
}

#[test]
fn a_yarn_classic_app_installs_with_the_yarn_package_json_names() {
    registry_app(
        "node-yarn",
        "hello from yarn",
        "yarn/bin/yarn.js install --frozen-lockfile",
    );
}

#[test]
fn a_yarn_berry_app_installs_immutably_into_node_modules() {
    registry_app(
        "node-berry",
        "hello from berry",
        "cli-dist/bin/yarn.js install --immutable",
    );
}

#[test]
fn an_app_with_no_package_json_runs_its_server_script() {
    let Some(f) = Fixture::with_app("node-pnpm") else {
        return;
    };
    for file in ["package.json", "pnpm-lock.yaml", "server.js"] {
        std::fs::remove_file(f.app.join(file)).unwrap();
    }
    std::fs::write(
        f.app.join("server.js"),
        "require('http').createServer((q, s) => s.end(`bare node ${process.version}\\n`)).listen(Number(process.env.PORT), '127.0.0.1');\n",
    )
    .unwrap();
    let report = f.build_with("cache", "out", &[]);
    let process = report["processes"].to_string();
    assert!(process.contains("server.js"), "{process}");
    let body = run(&f, "out");
    assert_eq!(content(&body), format!("bare node v{}\n", f.node.version));
}

#[test]
fn a_front_end_is_built_by_node_and_served_by_the_static_site_without_node() {
    let Some((f, extra)) = with_registry("node-frontend") else {
        return;
    };
    // Served by static-web-server from a loopback mirror, as a single-page
    // app (the fixture grants fetch:127.0.0.1).
    let Some(server) = crate::static_site::Mirror::start() else {
        return;
    };
    let mut extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    extra.extend(server.env.iter().map(String::as_str));
    extra.extend(["--env", "BP_STATIC_SPA=true"]);
    let report = f.build_with("cache", "out", &extra);
    let ids = group_ids(&report);
    assert!(
        ids.contains(&"cascade/node") && ids.contains(&"cascade/static-site"),
        "{ids:?}"
    );
    assert!(
        calls(&report)
            .iter()
            .any(|c| c.contains("npm-cli.js run build") && c.contains("(exit 0)")),
        "{:?}",
        calls(&report)
    );
    // No Node.js and no node_modules in the image: only the site.
    let layers = layer_names(&report);
    assert!(
        !layers.iter().any(|l| l.starts_with("cascade/node")),
        "{layers:?}"
    );
    let layout = f.tmp.path().join("out");
    let running = crate::static_site::Running::start(&layout, "app", &f.tmp.path().join("look"));
    assert!(!running.bundle.join("rootfs/layers/cascade_node").exists());
    // The page served is Vite's build, not the template, and a client
    // route gets it too; its script is JavaScript.
    let (status, _, page) = running.get("/");
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        page.contains("/assets/index-") && !page.contains("/src/main.js"),
        "{page}"
    );
    // (the fallback page comes trimmed)
    assert_eq!(
        running.get("/settings/profile").2.trim_end(),
        page.trim_end()
    );
    let script = page
        .split("src=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no script in {page}"));
    let (status, kind, _) = running.get(script);
    assert!(
        status.contains(" 200 ") && kind.contains("javascript"),
        "{script}: {status} {kind}"
    );
    drop(running);
    // Unchanged: the same image.
    let again = f.build_with("cache", "out", &extra);
    assert_eq!(again["digest"], report["digest"], "{report:#}\n{again:#}");
}

/// A server whose build script uses a devDependency (and writes a module
/// into node_modules, and whose postinstall needs that devDependency):
/// its image runs without the devDependency, with what the build
/// generated, from the pruned `launch-modules` layer the app's
/// node_modules links to; a no-op rebuild installs nothing.
/// `pnpm_lock`: the fixture's pnpm lock (tests/fixtures/locks/), which
/// replaces its package-lock.json.
fn pruned_server(pnpm_lock: Option<&str>, install: &str, prune: &str) {
    let Some((f, extra)) = with_registry("node-build-server") else {
        return;
    };
    if let Some(lock) = pnpm_lock {
        std::fs::remove_file(f.app.join("package-lock.json")).unwrap();
        std::fs::copy(
            fixtures().join("locks").join(lock),
            f.app.join("pnpm-lock.yaml"),
        )
        .unwrap();
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let cold = f.build_with("cache", "out", &extra);
    let used = calls(&cold);
    let position = |what: &str| {
        used.iter()
            .position(|c| c.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in {used:?}"))
    };
    // Installed (with the dev dependency), built, then pruned.
    assert!(position(install) < position(" run build") && position(" run build") < position(prune));
    let layers = layer_names(&cold);
    assert!(
        layers.contains(&"cascade/node:launch-modules".to_owned())
            && !layers.contains(&"cascade/node:modules".to_owned()),
        "{layers:?}"
    );
    assert_eq!(
        content(&run(&f, "out")),
        format!(
            "***built, is-number says true, left-pad absent, node v{}\n",
            f.node.version
        )
    );
    // Unchanged: the build runs again (it decides what changed) and the
    // tree is pruned again, nothing is installed, the image is the same.
    let again = f.build_with("cache", "out", &extra);
    assert_eq!(again["digest"], cold["digest"], "{cold:#}\n{again:#}");
    let used = calls(&again);
    assert!(used.iter().all(|c| !c.contains(install)), "{used:?}");
    assert!(used.iter().any(|c| c.contains(" run build")), "{used:?}");
}

#[test]
fn an_npm_server_built_by_its_script_ships_without_its_dev_dependencies() {
    pruned_server(None, "npm-cli.js ci ", "npm-cli.js prune --omit=dev");
}

#[test]
fn a_pnpm_server_built_by_its_script_ships_without_its_dev_dependencies() {
    pruned_server(
        Some("node-build-server.pnpm-lock.yaml"),
        "install --frozen-lockfile",
        " prune --prod",
    );
}
