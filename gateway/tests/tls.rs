//! The uplink over TLS with a CA file, a client certificate and a password, to a
//! real mosquitto that requires all three; and refusals when one is wrong.

mod common;

use common::{config, Sub};
use gateway::broker::{free_port, BrokerOptions, Mosquitto};
use gateway::config::Config;
use gateway::daemon::Gateway;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for localhost/127.0.0.1 and a client certificate.
fn pki(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    // rustls only takes X.509 v3 certificates, for the client's own too.
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for name in ["server", "client"] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        let mut args = vec!["x509", "-req", "-in", &*format!("{name}.csr")]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        args.extend(
            [
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
            ]
            .map(String::from),
        );
        args.extend(["-extfile".to_owned(), format!("{name}.ext")]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(dir, &args);
    }
}

async fn gateway_with(dir: &Path, mqtt: &str) -> Gateway {
    let text = config(&dir.join("data"), None, "", "") + mqtt;
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    Gateway::start(Config::load(&path).unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap()
}

#[tokio::test]
async fn tls_with_client_certificate_and_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    pki(d, "ca");
    std::fs::create_dir(d.join("other")).unwrap();
    pki(&d.join("other"), "otherca");
    let status = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(d.join("passwd"))
        .args(["gw1", "s3cret-pass"])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(d.join("password"), "s3cret-pass\n").unwrap();
    std::fs::write(d.join("wrong-password"), "guess\n").unwrap();
    let plain = free_port().unwrap();
    let broker = Mosquitto::start(BrokerOptions {
        password_file: Some(d.join("passwd")),
        tls: Some((d.join("ca.pem"), d.join("server.pem"), d.join("server.key"))),
        require_certificate: true,
        plain_port: Some(plain),
        ..Default::default()
    })
    .unwrap();
    let sub = Sub::start(plain, "cm/est1/gw1/status", "t-tls-sub", false).await;
    let mqtt = |ca: &str, password: &str| {
        format!(
            "[mqtt]\nurl = \"mqtts://localhost:{}\"\nca_file = \"{ca}\"\ncert_file = \"client.pem\"\nkey_file = \"client.key\"\nusername = \"gw1\"\npassword_file = \"{password}\"\nkeep_alive_s = 5\n",
            broker.port
        )
    };

    // A wrong password: refused, the gateway keeps running and retrying.
    let gw = gateway_with(d, &mqtt("ca.pem", "wrong-password")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !gw.uplink.as_ref().unwrap().connected(),
        "a wrong password must not connect"
    );
    gw.stop().await;

    // A CA that did not sign the broker's certificate: refused.
    let gw = gateway_with(d, &mqtt("other/otherca.pem", "password")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !gw.uplink.as_ref().unwrap().connected(),
        "an untrusted broker certificate must not connect"
    );
    gw.stop().await;
    assert!(
        sub.all().is_empty(),
        "nothing may have been published: {:?}",
        sub.all()
    );

    // Everything right: online.
    let gw = gateway_with(d, &mqtt("ca.pem", "password")).await;
    let m = sub
        .wait_for("online over TLS", Duration::from_secs(15), |m| {
            m.json["state"] == "online"
        })
        .await;
    assert!(m.json["ts"].is_string());
    assert!(gw.uplink.as_ref().unwrap().connected());
    gw.stop().await;
    sub.wait_for("stopped over TLS", Duration::from_secs(10), |m| {
        m.json["state"] == "stopped"
    })
    .await;
}
