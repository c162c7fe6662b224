//! The Dockerfile: its instructions, stage by stage, and what the image must do.

use crate::{read, repo};

/// One instruction: its keyword (upper case) and the rest, continuation lines joined.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (keyword, rest) = l
                .trim()
                .split_once(char::is_whitespace)
                .unwrap_or((l.trim(), ""));
            (keyword.to_uppercase(), rest.trim().to_owned())
        })
        .collect()
}

pub fn check_dockerfile(text: &str, dockerignore: &str) -> Vec<String> {
    let mut p = Vec::new();
    let all = instructions(text);
    let stages: Vec<&[(String, String)]> = {
        let starts: Vec<usize> = all
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| k == "FROM")
            .map(|(i, _)| i)
            .collect();
        starts
            .iter()
            .enumerate()
            .map(|(n, &start)| &all[start..starts.get(n + 1).copied().unwrap_or(all.len())])
            .collect()
    };
    let [build, .., runtime] = stages.as_slice() else {
        p.push("docker/Dockerfile: expected a build stage and a runtime stage".to_owned());
        return p;
    };
    let build_name = build[0]
        .1
        .rsplit_once(" AS ")
        .map(|(_, n)| n.trim().to_owned());
    if !build
        .iter()
        .any(|(k, rest)| k == "RUN" && rest.contains("cargo build --release --locked"))
    {
        p.push(
            "docker/Dockerfile: the build stage must run `cargo build --release --locked`".into(),
        );
    }
    let entrypoint = runtime.iter().rev().find(|(k, _)| k == "ENTRYPOINT");
    match entrypoint.map(|(_, rest)| serde_json::from_str::<Vec<String>>(rest)) {
        Some(Ok(words))
            if words
                .first()
                .is_some_and(|w| w == "orderflow" || w.ends_with("/orderflow")) => {}
        _ => p.push(
            "docker/Dockerfile: the final stage needs ENTRYPOINT [\"orderflow\"] in exec form (so \
             orderflow gets SIGTERM and compose commands are its arguments)"
                .into(),
        ),
    }
    if let Some((_, cmd)) = runtime.iter().rev().find(|(k, _)| k == "CMD")
        && serde_json::from_str::<Vec<String>>(cmd).is_err()
    {
        p.push("docker/Dockerfile: CMD must be in exec form, arguments to orderflow".into());
    }
    match runtime.iter().rev().find(|(k, _)| k == "USER") {
        Some((_, user)) if !matches!(user.split(':').next(), Some("root" | "0")) => {}
        _ => p.push(
            "docker/Dockerfile: the final stage must switch to a user that is not root".into(),
        ),
    }
    let copies_binary = runtime.iter().any(|(k, rest)| {
        k == "COPY"
            && build_name
                .as_deref()
                .is_some_and(|n| rest.contains(&format!("--from={n}")))
            && rest.ends_with("/usr/local/bin/orderflow")
    });
    if !copies_binary {
        p.push(
            "docker/Dockerfile: the final stage must COPY --from=<build stage> the binary to \
             /usr/local/bin/orderflow (on PATH, for the ENTRYPOINT)"
                .into(),
        );
    }
    // Every file copied from the build context must exist and not be ignored.
    let ignored: Vec<&str> = dockerignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    if !ignored.contains(&"target") {
        p.push(".dockerignore must exclude target/ (gigabytes of build output)".into());
    }
    let mut copied = Vec::new();
    for (keyword, rest) in &all {
        if keyword != "COPY" || rest.starts_with("--from") {
            continue;
        }
        let words: Vec<&str> = rest
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        for source in &words[..words.len().saturating_sub(1)] {
            copied.push(source.to_string());
            if !repo().join(source).exists() {
                p.push(format!(
                    "docker/Dockerfile copies {source}, which is not in the repository"
                ));
            }
            if ignored.contains(source) {
                p.push(format!(
                    "docker/Dockerfile copies {source}, which .dockerignore excludes"
                ));
            }
        }
    }
    // Cargo reads every target the manifest names.
    for needed in ["Cargo.toml", "Cargo.lock", "src"] {
        if !copied.iter().any(|c| c == needed) {
            p.push(format!("docker/Dockerfile does not copy {needed}"));
        }
    }
    if read("Cargo.toml").contains("[[bench]]") && !copied.iter().any(|c| c == "benches") {
        p.push("docker/Dockerfile must copy benches: Cargo.toml names them".into());
    }
    p
}
