//! `ngayle serve [--listen ADDR]`: the daemon.

use std::net::SocketAddr;
use std::path::Path;

use super::Failure;
use crate::daemon::{self, DaemonError, ServeOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on [default: `http.listen` of the config].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Do not watch the files for changes (reload on SIGHUP only).
    #[arg(long)]
    pub no_watch: bool,
}

pub fn run(config: &Path, args: &Args) -> Result<(), Failure> {
    super::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let result = runtime.block_on(async {
        let listen = match args.listen {
            Some(a) => a,
            None => {
                // The address comes from the config; a broken config is reported by serve.
                let report = crate::schedule::load(config, daemon::now().0);
                report
                    .schedule
                    .map_or(([127, 0, 0, 1], 8080).into(), |s| s.settings.listen)
            }
        };
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            tracing::error!(%listen, error = %crate::diag::with_os_hint(&e), "không mở được cổng");
            DaemonError::Io(e)
        })?;
        let opts = ServeOptions {
            config: config.to_path_buf(),
            listener,
            watch: !args.no_watch,
            sighup: true,
        };
        daemon::serve(opts, daemon::shutdown_signal()).await
    });
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, "ngayle dừng vì lỗi");
            match e {
                // The files or the mail settings are invalid: the diagnostics were logged.
                DaemonError::Invalid(_) | DaemonError::Mail(_) => Err(Failure::Invalid),
                e => Err(Failure::Runtime(crate::diag::with_os_hint(&e))),
            }
        }
    }
}
