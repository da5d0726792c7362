//! The pure request mapping: a method and URL to a [`Route`], or to the
//! 404 / 405 answer. No state: a fuzz target drives it.

use super::Reply;
use crate::http::BASES;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Status,
    Metrics,
    /// `GET routerEngines[/{map}[/{engine}]]`.
    Engines {
        map: Option<String>,
        engine: Option<String>,
    },
    Put {
        map: String,
        engine: String,
    },
    Delete {
        map: String,
        engine: String,
    },
    /// `POST cluster`: a failover message from another manager.
    Cluster,
    /// `GET health` (also `/health`): 200 or 503 with the reasons.
    Health,
    /// `GET loggers[/{name}]`: ESP's logger list; edgecm has one, `edgecm`.
    Loggers {
        name: Option<String>,
    },
    /// `PUT loggers/{name}/level?value=LEVEL`: the log level, live.
    SetLevel {
        name: String,
        value: String,
    },
}

/// The one logger edgecm has (ESP's `GET loggers` lists `esp`, `esp.http`, ...).
pub const LOGGER: &str = "edgecm";

/// Maps a method and URL to a [`Route`], or to the 404 / 405 answer.
pub fn route(method: &str, url: &str) -> Result<Route, Reply> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    if path == "/health" {
        return match method {
            "GET" | "HEAD" => Ok(Route::Health),
            _ => Err(Reply::not_allowed(method, path, "GET")),
        };
    }
    let rest = BASES
        .iter()
        .find_map(|b| path.strip_prefix(b))
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .ok_or_else(|| {
            Reply::text(
                404,
                format!(
                    "{path}: not found; the admin API is under {} and {}",
                    BASES[0], BASES[1]
                ),
            )
        })?;
    let segs: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let get_only = |r: Route| match method {
        "GET" | "HEAD" => Ok(r),
        _ => Err(Reply::not_allowed(method, path, "GET")),
    };
    match segs.as_slice() {
        ["status"] => get_only(Route::Status),
        ["health"] => get_only(Route::Health),
        ["cluster"] => match method {
            "POST" => Ok(Route::Cluster),
            _ => Err(Reply::not_allowed(method, path, "POST")),
        },
        ["metrics"] => get_only(Route::Metrics),
        ["loggers"] => get_only(Route::Loggers { name: None }),
        ["loggers", name] => get_only(Route::Loggers {
            name: Some(name.to_string()),
        }),
        ["loggers", name, "level"] => match method {
            "PUT" | "POST" => Ok(Route::SetLevel {
                name: name.to_string(),
                value: url
                    .split_once('?')
                    .into_iter()
                    .flat_map(|(_, q)| q.split('&'))
                    .find_map(|kv| kv.strip_prefix("value="))
                    .map(percent_decode)
                    .unwrap_or_default(),
            }),
            _ => Err(Reply::not_allowed(method, path, "PUT")),
        },
        ["routerEngines"] => get_only(Route::Engines {
            map: None,
            engine: None,
        }),
        ["routerEngines", map] => get_only(Route::Engines {
            map: Some(map.to_string()),
            engine: None,
        }),
        ["routerEngines", map, engine] => {
            let (map, engine) = (map.to_string(), engine.to_string());
            match method {
                "GET" | "HEAD" => Ok(Route::Engines {
                    map: Some(map),
                    engine: Some(engine),
                }),
                "PUT" => Ok(Route::Put { map, engine }),
                "DELETE" => Ok(Route::Delete { map, engine }),
                _ => Err(Reply::not_allowed(method, path, "GET, PUT, DELETE")),
            }
        }
        _ => Err(Reply::text(
            404,
            format!(
                "{path}: not found; accepted: status, health, metrics, routerEngines, routerEngines/{{esp-map}}, routerEngines/{{esp-map}}/{{engine}}, loggers, loggers/edgecm, loggers/edgecm/level?value=LEVEL, cluster"
            ),
        )),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|&c| hex(c)),
            b.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_under_both_bases() {
        for base in BASES {
            assert_eq!(route("GET", &format!("{base}/status")), Ok(Route::Status));
            assert_eq!(
                route("PUT", &format!("{base}/routerEngines/m%201/esp2?x=1")),
                Ok(Route::Put {
                    map: "m 1".into(),
                    engine: "esp2".into()
                })
            );
        }
    }

    #[test]
    fn loggers_as_esp_names_them() {
        assert_eq!(
            route("GET", "/eventStreamProcessing/v1/loggers"),
            Ok(Route::Loggers { name: None })
        );
        assert_eq!(
            route("PUT", "/SASESP/loggers/edgecm/level?value=debug"),
            Ok(Route::SetLevel {
                name: "edgecm".into(),
                value: "debug".into()
            })
        );
        assert_eq!(
            route("GET", "/SASESP/loggers/edgecm/level")
                .unwrap_err()
                .status,
            405
        );
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let r = route("POST", "/SASESP/routerEngines/m/e").unwrap_err();
        assert_eq!(r.status, 405);
        assert_eq!(r.allow, Some("GET, PUT, DELETE"));
        assert_eq!(route("DELETE", "/SASESP/status").unwrap_err().status, 405);
    }

    #[test]
    fn unknown_paths_are_404() {
        assert_eq!(route("GET", "/status").unwrap_err().status, 404);
        assert_eq!(route("GET", "/SASESPx/status").unwrap_err().status, 404);
        assert_eq!(
            route("GET", "/SASESP/routerEngines/a/b/c")
                .unwrap_err()
                .status,
            404
        );
    }
}
