//! The driver's end of the cells' local socket: a Linux abstract socket that only processes of
//! this user, presenting this session's token, may use.

use crate::cell_input::{InputError, InputRequest};
use crate::displays::CellDisplay;
use crate::error::DriverError;
use crate::state::DriverState;
use crate::{frames, lazy_inputs, text_splits};
use std::os::linux::net::SocketAddrExt;
use std::path::Path;
use std::sync::Arc;
use tessera_plan::builtin::{Builtin, RowsParams, WriteParams};
use tessera_plan::cell_protocol::{CellAction, CellRequest, CellResponse, REQUEST, decode_request};
use tessera_plan::decode::{check_frame, framed};
use tessera_plan::{RddId, RddKind, RddNode, TaskAction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

pub fn bind(name: &str) -> std::io::Result<UnixListener> {
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr)?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

pub async fn serve(listener: UnixListener, state: Arc<DriverState>) {
    let uid = unsafe { libc::getuid() };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if stream.peer_cred().map(|c| c.uid()).ok() != Some(uid) {
            tracing::warn!("refused a cell connection from another user");
            continue;
        }
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, state).await {
                tracing::debug!("cell connection ended: {e}");
            }
        });
    }
}

/// Answers the requests of one connection, one after the other, until the cell closes it (a
/// cell's thread keeps its connection between requests).
async fn handle(stream: UnixStream, state: Arc<DriverState>) -> std::io::Result<()> {
    // A request's length and body arrive in one write: read through a buffer, they take one
    // system call, where the length and then the body, read as its `Vec` grew, took six.
    let mut stream = tokio::io::BufReader::new(stream);
    loop {
        let len = match stream.read_u32_le().await {
            Ok(len) => len,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        // The body grows with the bytes that arrive, not with what the length claims.
        let mut body = Vec::new();
        (&mut stream)
            .take(len.into())
            .read_to_end(&mut body)
            .await?;
        let body = check_frame(REQUEST, len.into(), body)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, e))?;
        let response = match decode_request(&body) {
            Ok(envelope) if token_matches(envelope.token, state.token) => {
                respond(&state, envelope.request)
                    .await
                    .unwrap_or_else(|e| CellResponse::Error(e.to_string()))
            }
            Ok(_) => CellResponse::Error("this cell's session token is not the driver's".into()),
            Err(e) => CellResponse::Error(e.to_string()),
        };
        let reply = bincode::serialize(&response).expect("responses serialize");
        // One write: the cell, waiting for the reply, wakes once.
        stream.write_all(&framed(&reply)).await?;
    }
}

/// Whether a cell's token is the session's, compared in constant time.
fn token_matches(token: u64, session: u64) -> bool {
    tessera_credentials::secrets_equal(&token.to_le_bytes(), &session.to_le_bytes())
}

fn describe(state: &DriverState, rdd: RddId) -> Result<CellResponse, DriverError> {
    state.lineage.with(rdd, |entry| CellResponse::Defined {
        rdd,
        num_partitions: entry.node.num_partitions,
        partitioner: entry.partitioner.clone(),
    })
}

fn frame_defined(frame: frames::Frame) -> CellResponse {
    CellResponse::FrameDefined {
        rdd: frame.rdd,
        num_partitions: frame.num_partitions,
        schema: frame.schema,
    }
}

async fn respond(
    state: &Arc<DriverState>,
    request: CellRequest,
) -> Result<CellResponse, DriverError> {
    match request {
        CellRequest::Define(node) => {
            let node = RddNode {
                kind: node.kind.try_map_code(|c| state.artifacts.resolve(c))?,
                num_partitions: node.num_partitions,
                element_type: node.element_type,
                name: node.name,
            };
            let (rdd, _) = state.lineage.define(node)?;
            describe(state, rdd)
        }
        CellRequest::TextFile {
            path,
            min_partitions,
            decoder,
            name,
        } => {
            let cwd = std::env::current_dir().map_err(DriverError::NoWorkingDirectory)?;
            let splits =
                text_splits::splits(&path, min_partitions, text_splits::TEXT_SPLIT_BYTES, &cwd)?;
            let node = RddNode {
                num_partitions: splits.len() as u32,
                kind: RddKind::TextFile {
                    splits,
                    decoder: decoder.try_map(|c| state.artifacts.resolve(c))?,
                },
                element_type: "alloc::string::String".into(),
                name,
            };
            let (rdd, _) = state.lineage.define(node)?;
            describe(state, rdd)
        }
        CellRequest::ReadFrame {
            path,
            format,
            schema,
            min_partitions,
            name,
        } => frames::read(state, &path, format, schema, min_partitions, &name).map(frame_defined),
        CellRequest::Frame { input, step, name } => {
            frames::apply(state, input, step, &name).map(frame_defined)
        }
        CellRequest::FrameUnion { inputs, name } => {
            frames::union(state, &inputs, &name).map(frame_defined)
        }
        CellRequest::FrameJoin {
            left,
            right,
            on,
            name,
        } => frames::join(state, left, right, on, &name)
            .await
            .map(frame_defined),
        CellRequest::FrameToRdd {
            frame,
            reader,
            element_type,
            name,
        } => {
            let reader = reader.try_map(|c| state.artifacts.resolve(c))?;
            let rdd = frames::to_rdd(state, frame, reader, element_type, &name)?;
            describe(state, rdd)
        }
        CellRequest::RddToFrame {
            rdd,
            writer,
            partitions,
            schema,
            name,
        } => {
            let writer = writer.try_map(|c| state.artifacts.resolve(c))?;
            frames::from_rdd(state, rdd, writer, partitions, schema, &name).map(frame_defined)
        }
        CellRequest::SkippedRows { rdd } => {
            frames::skipped_rows(state, rdd).map(CellResponse::SkippedRows)
        }
        CellRequest::ExplainFrame { rdd } => {
            crate::frame_explain::explain(state, rdd).map(CellResponse::Explained)
        }
        CellRequest::DescribeFrame { rdd } => frames::describe(state, rdd).map(frame_defined),
        CellRequest::RegisterTable { rdd, name } => {
            frames::register(state, rdd, name)?;
            Ok(CellResponse::Done)
        }
        CellRequest::Sql { query } => crate::frame_sql::run(state, &query)
            .await
            .map(frame_defined),
        CellRequest::AddFile { path } => {
            let file = state.side_files.add(Path::new(&path), &state.artifacts)?;
            tracing::info!(name = %file.name, hash = %file.hash, "added a file for executors");
            Ok(CellResponse::Done)
        }
        CellRequest::Display {
            data,
            display_id,
            update,
        } => {
            state.displays.send(CellDisplay::Show {
                data,
                display_id,
                update,
            });
            Ok(CellResponse::Done)
        }
        CellRequest::Input { prompt, password } => {
            let state = state.clone();
            let request = InputRequest { prompt, password };
            // The reader blocks until the person answers.
            match tokio::task::spawn_blocking(move || state.input.read(&request)).await {
                Ok(line) => Ok(CellResponse::Line(line?)),
                // The reader panicked: the front end has no answer to give.
                Err(_) => Err(InputError::Ended.into()),
            }
        }
        CellRequest::ClearOutput { wait } => {
            state.displays.send(CellDisplay::Clear { wait });
            Ok(CellResponse::Done)
        }
        CellRequest::CellPanicked { message } => {
            *state.cell_panic.lock() = Some(message);
            Ok(CellResponse::Done)
        }
        CellRequest::Describe { rdd } => describe(state, rdd),
        CellRequest::Lineage { rdd } => Ok(CellResponse::Lineage {
            rdds: crate::lineage_report::lineage_entries(&state.lineage, &state.blocks, rdd)?,
        }),
        CellRequest::Broadcast { value } => Ok(CellResponse::Created {
            id: state
                .shared_values
                .broadcast(value, "a value of a cell (Context::broadcast)".into()),
        }),
        CellRequest::Accumulator => Ok(CellResponse::Created {
            id: state.shared_values.accumulator(),
        }),
        CellRequest::Accumulate { id, value } => {
            state.shared_values.accumulate([(id, value)]);
            Ok(CellResponse::Done)
        }
        CellRequest::AccumulatorValue { id } => Ok(CellResponse::Partials {
            values: state
                .shared_values
                .partials(id)
                .ok_or(DriverError::UnknownAccumulator(id))?,
        }),
        CellRequest::Checkpointed { rdd, dir, decoder } => {
            let partitions = state.lineage.num_partitions(rdd)?;
            let files: Vec<String> = (0..partitions)
                .map(|p| format!("{dir}/part-{p:05}"))
                .collect();
            if let Some(missing) = files.iter().find(|f| !std::path::Path::new(f).exists()) {
                return Err(DriverError::CheckpointNotShared {
                    rdd,
                    missing: missing.clone(),
                    dir,
                });
            }
            let decoder = decoder.try_map(|c| state.artifacts.resolve(c))?;
            state
                .lineage
                .replace_kind(rdd, RddKind::Checkpoint { files, decoder })?;
            Ok(CellResponse::Done)
        }
        CellRequest::Persist { rdd, level } => {
            state.lineage.set_persist(rdd, level)?;
            if level.is_none() {
                state.drop_cached(rdd).await;
            }
            Ok(CellResponse::Done)
        }
        CellRequest::RunJob {
            rdd,
            action,
            partitions,
            name,
        } => {
            // Each partition's IPC stream goes to the cell as it came; an empty partition's is
            // a stream of the DataFrame's schema, so that the cell needs no schema conversion of
            // its own to make a DataFrame of no rows.
            let schema_of_empty = match &action {
                CellAction::Ipc => Some(state.frames.get(rdd)?),
                _ => None,
            };
            let action = match action {
                CellAction::Count => TaskAction::Count,
                CellAction::Ipc => TaskAction::Run(Builtin::Ipc.operator(Vec::new())),
                CellAction::Run(op) => TaskAction::Run(op.try_map(|c| state.artifacts.resolve(c))?),
                CellAction::Rows { limit } => {
                    state.frames.get(rdd)?;
                    TaskAction::Run(Builtin::Rows.with_params(&RowsParams { limit }))
                }
                CellAction::WriteFrame { dir, format } => {
                    state.frames.get(rdd)?;
                    TaskAction::Run(Builtin::Write.with_params(&WriteParams { dir, format }))
                }
            };
            let description = format!(
                "{name} on rdd {rdd} ({})",
                state.lineage.with(rdd, |e| e.node.name.clone())?
            );
            let mut results =
                lazy_inputs::run_job(state.clone(), rdd, action, partitions, description).await?;
            if let Some(schema) = schema_of_empty {
                let empty =
                    tessera_frame::ipc::empty(&schema).map_err(|source| DriverError::Frame {
                        what: "collecting a DataFrame".to_string(),
                        source,
                    })?;
                for part in results.iter_mut().filter(|p| p.is_empty()) {
                    part.clone_from(&empty);
                }
                if results.is_empty() {
                    results.push(empty);
                }
            }
            Ok(CellResponse::JobResult { results })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_lineage::{parallelize, shuffle};
    use tessera_plan::{LocalCodeRef, Operator};

    fn state() -> Arc<DriverState> {
        let dir = std::env::temp_dir().join("tessera-cell-server-tests");
        Arc::new(DriverState::new(&dir, "the executor logs".into()).unwrap())
    }

    async fn answer(
        state: &Arc<DriverState>,
        request: CellRequest,
    ) -> Result<CellResponse, String> {
        respond(state, request).await.map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn cells_learn_what_the_driver_holds_and_errors_say_what_is_wrong() {
        let state = state();
        let source = parallelize(&state.lineage, 4);
        let placed = shuffle(&state.lineage, source, 3);
        let Ok(CellResponse::Defined {
            num_partitions: 3,
            partitioner: Some(_),
            ..
        }) = answer(&state, CellRequest::Describe { rdd: placed }).await
        else {
            panic!("a shuffle's output is described with its partitioner");
        };
        let unknown = answer(&state, CellRequest::Describe { rdd: 77 }).await;
        assert!(
            unknown
                .unwrap_err()
                .contains("rdd 77 is not defined in this session")
        );

        let Ok(CellResponse::Created { id }) = answer(&state, CellRequest::Accumulator).await
        else {
            panic!("an accumulator is created");
        };
        let value = vec![1, 2];
        answer(
            &state,
            CellRequest::Accumulate {
                id,
                value: value.clone(),
            },
        )
        .await
        .unwrap();
        let Ok(CellResponse::Partials { values }) =
            answer(&state, CellRequest::AccumulatorValue { id }).await
        else {
            panic!("an accumulator answers its partial values");
        };
        assert_eq!(values, [value]);
        let missing = answer(&state, CellRequest::AccumulatorValue { id: id + 1 }).await;
        assert!(
            missing
                .unwrap_err()
                .contains("create it with `sc.accumulator`")
        );
    }

    #[tokio::test]
    async fn a_checkpoint_whose_files_are_missing_says_where_it_looked() {
        let state = state();
        let source = parallelize(&state.lineage, 2);
        let decoder = Operator {
            entry: LocalCodeRef {
                library_path: "/nonexistent/cell.so".into(),
                offset: 0,
            },
            env_decoder: None,
            captures: Vec::new(),
            params: Vec::new(),
        };
        let error = answer(
            &state,
            CellRequest::Checkpointed {
                rdd: source,
                dir: "/nonexistent/checkpoints".into(),
                decoder,
            },
        )
        .await
        .unwrap_err();
        assert!(
            error.contains("/nonexistent/checkpoints/part-00000 was not written")
                && error.contains("every executor and this session share"),
            "{error}"
        );
        // The RDD keeps its lineage.
        assert!(state.lineage.chain(source, 0).is_ok());
    }

    #[test]
    fn only_the_sessions_token_opens_the_socket() {
        assert!(token_matches(42, 42));
        assert!(!token_matches(41, 42));
    }
}
