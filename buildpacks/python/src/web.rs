//! The `web` process of an app with no Procfile, from what the app is: a
//! Django project (served by gunicorn when it is installed), an ASGI app
//! (FastAPI, Starlette, Quart, Litestar; served by uvicorn), a WSGI app
//! (Flask, Bottle; served by gunicorn), else a script (`main.py`, `app.py`,
//! `server.py`) run by python.
//!
//! Commands never need a shell, so they start on a run image without one:
//! gunicorn binds `0.0.0.0:$PORT` itself when `PORT` is set (the layer sets
//! a default of 8080), and uvicorn is started through its `uvicorn.run`
//! API, which reads `PORT` in Python.

use std::path::Path;

/// A `web` command and what it was chosen from (for the build log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Web {
    pub command: Vec<String>,
    pub why: String,
}

/// Where the installed packages' scripts are, and the python that runs
/// them.
pub struct Installed<'a> {
    /// `bin/` of the packages layer (pip `--user`) or of its venv.
    pub scripts: &'a Path,
    /// The CPython layer's `bin/python3`.
    pub python: &'a Path,
}

impl Installed<'_> {
    fn script(&self, name: &str) -> Option<String> {
        let path = self.scripts.join(name);
        path.is_file().then(|| path.display().to_string())
    }

    fn python(&self) -> String {
        self.python.display().to_string()
    }
}

const ASGI: [&str; 4] = ["FastAPI(", "Starlette(", "Quart(", "Litestar("];
const WSGI: [&str; 2] = ["Flask(", "Bottle("];
/// Modules looked at for an app object, in order.
const MODULES: [&str; 5] = ["main", "app", "server", "asgi", "wsgi"];
const SCRIPTS: [&str; 3] = ["main.py", "app.py", "server.py"];

pub fn infer(app: &Path, installed: &Installed<'_>) -> Option<Web> {
    django(app, installed)
        .or_else(|| framework(app, installed))
        .or_else(|| {
            let script = SCRIPTS.iter().find(|s| app.join(s).is_file())?;
            Some(Web {
                command: vec![installed.python(), (*script).to_owned()],
                why: (*script).to_owned(),
            })
        })
}

fn django(app: &Path, installed: &Installed<'_>) -> Option<Web> {
    let manage = std::fs::read_to_string(app.join("manage.py")).ok()?;
    let settings = settings_module(&manage)?;
    // The package that holds wsgi.py/asgi.py: the settings module's, or
    // one above it (`mysite.settings.production` is under `mysite`).
    let holding = |file: &str| {
        let mut package = settings.as_str();
        while let Some((parent, _)) = package.rsplit_once('.') {
            package = parent;
            if app.join(package.replace('.', "/")).join(file).is_file() {
                return Some(package.to_owned());
            }
        }
        None
    };
    if let Some(gunicorn) = installed.script("gunicorn")
        && let Some(package) = holding("wsgi.py")
    {
        return Some(Web {
            command: vec![gunicorn, format!("{package}.wsgi")],
            why: format!("a Django project ({settings}) with gunicorn installed"),
        });
    }
    if installed.script("uvicorn").is_some()
        && let Some(package) = holding("asgi.py")
    {
        return Some(uvicorn(
            installed,
            &format!("{package}.asgi:application"),
            &format!("a Django project ({settings}) with uvicorn installed"),
        ));
    }
    Some(Web {
        command: vec![
            installed.python(),
            "-c".into(),
            "import os, sys; os.execv(sys.executable, [sys.executable, 'manage.py', 'runserver', '--noreload', '0.0.0.0:' + os.environ.get('PORT', '8080')])".into(),
        ],
        why: format!(
            "a Django project ({settings}) without gunicorn: Django's development server (add gunicorn to the dependencies to serve it properly)"
        ),
    })
}

/// `DJANGO_SETTINGS_MODULE`'s default in manage.py (on a line that is not
/// a comment).
fn settings_module(manage: &str) -> Option<String> {
    let line = manage
        .lines()
        .find(|l| l.contains("DJANGO_SETTINGS_MODULE") && !l.trim_start().starts_with('#'))?;
    let manage = line;
    let at = manage.find("DJANGO_SETTINGS_MODULE")?;
    // Past the name's own closing quote: `", "mysite.settings")` or
    // `'] = 'conf.settings'`; the value is the next quoted string.
    let rest = manage.get(at + "DJANGO_SETTINGS_MODULE".len() + 1..)?;
    let open = rest.find(['"', '\''])?;
    let quote = rest[open..].chars().next()?;
    let value = &rest[open + 1..];
    let value = &value[..value.find(quote)?];
    let valid = !value.is_empty()
        && value
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    valid.then(|| value.to_owned())
}

fn uvicorn(installed: &Installed<'_>, target: &str, why: &str) -> Web {
    Web {
        command: vec![
            installed.python(),
            "-c".into(),
            format!(
                "import os, uvicorn; uvicorn.run('{target}', host='0.0.0.0', port=int(os.environ.get('PORT', '8080')))"
            ),
        ],
        why: why.to_owned(),
    }
}

/// An ASGI or WSGI app object assigned at the top level of one of
/// [`MODULES`] (`app = FastAPI()`), served when its server is installed.
fn framework(app: &Path, installed: &Installed<'_>) -> Option<Web> {
    for module in MODULES {
        let Ok(text) = std::fs::read_to_string(app.join(format!("{module}.py"))) else {
            continue;
        };
        for line in text.lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let name = name.trim_end();
            let identifier = !name.is_empty()
                && !line.starts_with([' ', '\t'])
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !identifier {
                continue;
            }
            let value = value.trim_start();
            let constructed = |kinds: &'static [&'static str]| {
                kinds.iter().find(|k| {
                    value.starts_with(*k)
                        || value
                            .split_once('.')
                            .is_some_and(|(_, rest)| rest.starts_with(*k))
                })
            };
            if let Some(kind) = constructed(&ASGI)
                && installed.script("uvicorn").is_some()
            {
                let kind = kind.trim_end_matches('(');
                return Some(uvicorn(
                    installed,
                    &format!("{module}:{name}"),
                    &format!("an ASGI app ({kind} in {module}.py) with uvicorn installed"),
                ));
            }
            if let Some(kind) = constructed(&WSGI)
                && let Some(gunicorn) = installed.script("gunicorn")
            {
                let kind = kind.trim_end_matches('(');
                return Some(Web {
                    command: vec![gunicorn, format!("{module}:{name}")],
                    why: format!("a WSGI app ({kind} in {module}.py) with gunicorn installed"),
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        app: tempfile::TempDir,
        scripts: tempfile::TempDir,
    }

    impl Fixture {
        fn new(files: &[(&str, &str)], scripts: &[&str]) -> Self {
            let app = tempfile::tempdir().unwrap();
            for (name, text) in files {
                let path = app.path().join(name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            let bin = tempfile::tempdir().unwrap();
            for s in scripts {
                std::fs::write(bin.path().join(s), "").unwrap();
            }
            Self { app, scripts: bin }
        }

        fn web(&self) -> Option<Web> {
            let python = Path::new("/layers/p/python/bin/python3");
            infer(
                self.app.path(),
                &Installed {
                    scripts: self.scripts.path(),
                    python,
                },
            )
        }
    }

    const MANAGE: &str =
        "import os\nos.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", \"mysite.settings\")\n";

    #[test]
    fn django_is_served_by_gunicorn_when_installed() {
        let f = Fixture::new(
            &[("manage.py", MANAGE), ("mysite/wsgi.py", "")],
            &["gunicorn"],
        );
        let web = f.web().unwrap();
        assert!(web.command[0].ends_with("/gunicorn"), "{web:?}");
        assert_eq!(web.command[1], "mysite.wsgi");
        let f = Fixture::new(&[("manage.py", MANAGE), ("mysite/wsgi.py", "")], &[]);
        let web = f.web().unwrap();
        assert!(web.why.contains("development server"), "{web:?}");
        assert!(web.command[2].contains("'runserver'"), "{web:?}");
    }

    #[test]
    fn split_settings_find_the_wsgi_module_above_them() {
        let manage =
            "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings.production')";
        let f = Fixture::new(
            &[
                ("manage.py", manage),
                ("mysite/wsgi.py", ""),
                ("mysite/settings/production.py", ""),
            ],
            &["gunicorn"],
        );
        assert_eq!(f.web().unwrap().command[1], "mysite.wsgi");
    }

    #[test]
    fn settings_are_read_from_manage_py() {
        assert_eq!(settings_module(MANAGE).as_deref(), Some("mysite.settings"));
        assert_eq!(
            settings_module("os.environ['DJANGO_SETTINGS_MODULE'] = 'conf.settings.prod'")
                .as_deref(),
            Some("conf.settings.prod")
        );
        assert_eq!(
            settings_module("setdefault('DJANGO_SETTINGS_MODULE', 'a; rm -rf')"),
            None
        );
        assert_eq!(settings_module("print('hi')"), None);
        assert_eq!(
            settings_module("# DJANGO_SETTINGS_MODULE = 'old.settings'\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'new.settings')").as_deref(),
            Some("new.settings")
        );
    }

    #[test]
    fn asgi_and_wsgi_apps_by_their_constructor() {
        let f = Fixture::new(
            &[("main.py", "from fastapi import FastAPI\napi = FastAPI()\n")],
            &["uvicorn"],
        );
        let web = f.web().unwrap();
        assert!(web.command[2].contains("uvicorn.run('main:api'"), "{web:?}");
        let f = Fixture::new(
            &[(
                "app.py",
                "import flask\napplication = flask.Flask(__name__)\n",
            )],
            &["gunicorn"],
        );
        let web = f.web().unwrap();
        assert_eq!(web.command[1], "app:application", "{web:?}");
        // Without its server, the script runs.
        let f = Fixture::new(
            &[("app.py", "import flask\napp = flask.Flask(__name__)\n")],
            &[],
        );
        assert_eq!(f.web().unwrap().command[1], "app.py");
        // Indented assignments are not the module's app.
        let f = Fixture::new(
            &[("server.py", "def f():\n    app = Flask(x)\n")],
            &["gunicorn"],
        );
        assert_eq!(f.web().unwrap().command[1], "server.py");
    }

    #[test]
    fn nothing_to_run_is_none() {
        assert_eq!(Fixture::new(&[("lib.py", "")], &[]).web(), None);
    }
}
