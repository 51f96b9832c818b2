"""The ``amaliy`` command: serve, users, bots."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import uvloop

from scenes import samples
from server import scenes_cli, skills_cli
from server.config import Config, from_env

if TYPE_CHECKING:
    from server.store import Store


def _serve_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 0.0.0.0; env AMALIY_HOST)")
    parser.add_argument("--port", type=int, help="HTTP port (default 8000; env AMALIY_PORT)")
    parser.add_argument("--ws-port", type=int, help="room socket port (default HTTP port + 1; env AMALIY_WS_PORT)")
    parser.add_argument("--data-dir", help="where the database and secrets live (default ./amaliy-data)")
    parser.add_argument("--public-url", help="base URL printed in links, e.g. http://10.0.0.5:8000")
    parser.add_argument("--tick-rate", type=float, help="room ticks per second (default 30)")
    parser.add_argument("--room-cap", type=int, help="students and observers per practical (default 40)")
    parser.add_argument("--resume-window", type=float, help="seconds a dropped participant keeps its place (default 30)")
    parser.add_argument("--max-message-bytes", type=int, help="largest message a client may send (default 16384)")
    parser.add_argument("--msg-rate", type=float, help="messages per second per client (default 120)")
    parser.add_argument("--no-demo", action="store_true", help="do not open a demo practical on start")
    parser.add_argument("--redis-url", help="Redis shared by several nodes (env REDIS_URL; default: none, one node on its own)")
    parser.add_argument("--node-id", help="this node's name in a deployment of several (default: host name and port)")
    parser.add_argument("--media-workers", type=int, help="voice worker processes, one core each (default: cores - 1, at least 1)")


def _config(args: argparse.Namespace) -> Config:
    values = {
        name: getattr(args, name, None)
        for name in (
            "host",
            "port",
            "ws_port",
            "data_dir",
            "public_url",
            "tick_rate",
            "room_cap",
            "resume_window",
            "max_message_bytes",
            "msg_rate",
            "redis_url",
            "node_id",
            "media_workers",
        )
    }
    if getattr(args, "no_demo", False):
        values["demo"] = False
    return from_env().with_overrides(**values)


async def _serve(config: Config) -> None:
    import uvicorn

    from server.api import WEB_ROOT, create_app
    from server.cluster import ClusterError
    from server.node import Node
    from server.replica import RecordsError

    try:
        node = Node(config)
    except RecordsError as exc:
        raise SystemExit(f"amaliy serve: {exc}") from None
    try:
        await node.start()
    except ClusterError as exc:
        raise SystemExit(f"amaliy serve: {exc}") from None
    teachers = node.store.users("teacher")
    key = ""
    if not teachers:
        teacher, key = node.store.add_user("Teacher", "teacher")
        print(f"\nCreated teacher '{teacher.name}'. Teacher key (shown once, keep it safe):\n  {key}\n", flush=True)
        teachers = [teacher]
    if config.demo and not node.store.sessions(status="open"):
        await node.open_session(teachers[0], samples.DEMO, title="Demo practical")
    if not (WEB_ROOT / "node_modules" / "three").is_dir():
        print("Web client dependencies are missing: run 'npm ci' in clients/web.", file=sys.stderr, flush=True)
    base = node.base_url()
    for session in node.store.sessions(status="open"):
        owner = next((t for t in teachers if t.id == session.teacher_id), None)
        print(f"Practical '{session.title}' ({session.scene_id}), join code {session.join_code}", flush=True)
        print(f"  students: {base}/?code={session.join_code}", flush=True)
        if owner is not None:
            print(f"  teacher:  {base}/#token={node.teacher_token(owner, session)}", flush=True)
    # the key rides in the fragment, which the browser never sends; the page keeps it and clears the address bar
    print(f"Teacher dashboard: {base}/dashboard.html" + (f"#key={key}" if key else "   (sign in with your teacher key)"), flush=True)
    print(f"API docs: {base}/docs   room socket: {node.ws_url()}\n", flush=True)
    # uvicorn re-raises the signal that stopped it; make SIGTERM unwind like SIGINT
    # so the node below still closes every socket with 1001 and closes the store.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    server = uvicorn.Server(
        uvicorn.Config(create_app(node), host=config.host, port=config.port, ws="none", lifespan="off", log_level="warning")
    )
    try:
        await server.serve()
    finally:
        await node.stop()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _store(args: argparse.Namespace, command: str) -> "Store":
    """The records a command works on: the data dir's, or with REDIS_URL the deployment's
    (the command's writes go through the shared log like a node's: server.replica)."""
    from server.replica import RecordsError
    from server.store import Store

    config = _config(args)
    try:
        return Store(config.data_dir, config.shared_records())
    except RecordsError as exc:
        raise SystemExit(f"amaliy {command}: {exc}") from None


def _users(args: argparse.Namespace) -> None:
    from realtime.names import NameRefused, display_name

    if args.users_command == "add":
        try:
            name = display_name(args.name)  # the same rules as /api/join: teachers join rooms under it
        except NameRefused as exc:
            raise SystemExit(f"amaliy users add: {exc}") from None
    store = _store(args, "users")
    try:
        if args.users_command == "add":
            user, key = store.add_user(name, args.role)
            print(f"{user.role.capitalize()} '{user.name}' ({user.id}) key (shown once):\n  {key}")
        else:
            for user in store.users():
                print(f"{user.id}  {user.role:<9} {user.name}")
    finally:
        store.close()


def _courses(args: argparse.Namespace) -> None:
    """``amaliy courses ...`` on the local data dir (the server may be running: SQLite copes)."""
    from realtime.names import NameRefused, display_name
    from server import roster

    store = _store(args, "courses")
    try:
        if args.courses_command == "add":
            try:
                name = display_name(args.name, 120)
            except NameRefused as exc:
                raise SystemExit(f"amaliy courses add: {exc}") from None
            teachers = store.users("teacher")
            if args.teacher is not None:
                teachers = [t for t in teachers if args.teacher in (t.id, t.name)]
            if len(teachers) != 1:
                which = "no teacher matches --teacher" if args.teacher else "there is no teacher" if not teachers else "there are several teachers"
                raise SystemExit(f"amaliy courses add: {which}; name one with --teacher ID (see 'amaliy users list').")
            course = store.add_course(teachers[0].id, name)
            print(f"Course '{course.name}' ({course.id}) of {teachers[0].name}")
        elif args.courses_command == "list":
            names = {u.id: u.name for u in store.users()}
            for course in store.courses():
                print(f"{course.id}  {len(store.students(course.id)):>4} students  {names.get(course.teacher_id, course.teacher_id)}: {course.name}")
        else:
            matches = [c for c in store.courses() if args.course in (c.id, c.name)]
            if len(matches) != 1:
                why = "no course" if not matches else "several courses"
                raise SystemExit(f"amaliy courses {args.courses_command}: {why} called {args.course!r}; use its id (see 'amaliy courses list').")
            course = matches[0]
            if args.courses_command == "import":
                try:
                    rows = roster.read_roster(Path(args.file).read_bytes(), store.students(course.id))
                except OSError as exc:
                    raise SystemExit(f"amaliy courses import: cannot read {args.file}: {exc.strerror}") from None
                except roster.RosterRejected as exc:
                    lines = [f"amaliy courses import: {exc.summary}", *(f"  line {line}: {text}" for line, text in exc.problems)]
                    raise SystemExit("\n".join(lines)) from None
                added = store.add_students(course.id, [(r.name, r.email, r.student_number) for r in rows])
                print(f"Imported {len(added)} students into '{course.name}'. Their sign-in codes (shown once; stored only hashed):")
                for student, code in added:
                    print(f"  {code}  {student.name}")
            else:
                students = store.students(course.id)
                print(
                    f"New sign-in codes for the {len(students)} students of '{course.name}'. Codes are stored only hashed, so"
                    " they can be shown only when made: each student's old code has stopped working."
                )
                for student in students:
                    print(f"  {store.rotate_code(student.id)}  {student.name}")
    finally:
        store.close()


def _backup(args: argparse.Namespace) -> int:
    """``amaliy backup`` and ``amaliy restore``: one line on stdout, or one on stderr and status 1."""
    from server import backup

    try:
        if args.command == "backup":
            print(backup.backup(_config(args).data_dir, Path(args.out)))
        else:
            print(backup.restore(Path(args.archive), Path(args.data_dir)))
        return 0
    except backup.BackupError as exc:
        print(f"amaliy: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("amaliy: interrupted; nothing was written", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bots"]:
        # The bots are a separate program that talks to the server over the network only.
        os.execv(sys.executable, [sys.executable, "-m", "amaliy_client.bots", *argv[1:]])
    parser = argparse.ArgumentParser(prog="amaliy", description="Realtime server for live virtual practicals.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (opens a demo practical when none is open)")
    _serve_args(serve)
    users = sub.add_parser("users", help="manage teachers and course designers")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="add a user and print their key")
    add.add_argument("name")
    add.add_argument("--role", choices=("teacher", "designer"), default="teacher")
    listing = users_sub.add_parser("list", help="list users")
    for cmd in (add, listing):
        cmd.add_argument("--data-dir", help="data dir of the server (default ./amaliy-data)")
    courses = sub.add_parser("courses", help="manage courses, their rosters and students' sign-in codes")
    courses_sub = courses.add_subparsers(dest="courses_command", required=True)
    course_add = courses_sub.add_parser("add", help="add a course")
    course_add.add_argument("name")
    course_add.add_argument("--teacher", help="id or name of the teacher who owns it (needed when there are several)")
    course_list = courses_sub.add_parser("list", help="list courses")
    course_import = courses_sub.add_parser("import", help="import a roster CSV (all rows or none) and print the new codes")
    course_import.add_argument("course", help="course id or name")
    course_import.add_argument("file", help="CSV with a header row: name[,email][,student_number]")
    course_codes = courses_sub.add_parser("codes", help="give every student of a course a NEW sign-in code and print them")
    course_codes.add_argument("course", help="course id or name")
    for cmd in (course_add, course_list, course_import, course_codes):
        cmd.add_argument("--data-dir", help="data dir of the server (default ./amaliy-data)")
    scenes_cli.add_parser(sub)
    skills_cli.add_parser(sub)
    backup = sub.add_parser("backup", help="write the data dir to one file, while the server may be running")
    backup.add_argument("out", metavar="OUT", help="the tar.gz to write (a folder: a dated file in it)")
    backup.add_argument("--data-dir", "--data", dest="data_dir", metavar="DIR", help="data dir of the server (default ./amaliy-data; env AMALIY_DATA_DIR)")
    restore = sub.add_parser("restore", help="restore a backup into an empty or new data dir")
    restore.add_argument("archive", metavar="ARCHIVE", help="a file written by 'amaliy backup'")
    restore.add_argument("--data-dir", "--data", dest="data_dir", metavar="DIR", required=True, help="the empty or new folder to restore into")
    sub.add_parser("bots", help="put simulated students into a practical (see 'amaliy bots --help')")
    args = parser.parse_args(argv)
    if args.command == "serve":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        try:
            # uvloop: about 10 % less CPU per participant on the room socket's hot path
            # (docs/benchmarks.md); the room code is the same on either loop.
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(_serve(_config(args)))
        except KeyboardInterrupt:
            pass
    elif args.command == "users":
        _users(args)
    elif args.command == "courses":
        _courses(args)
    elif args.command == "scenes":
        raise SystemExit(scenes_cli.run(args))
    elif args.command == "skills":
        raise SystemExit(skills_cli.run(args, _config(args).data_dir))
    elif args.command in ("backup", "restore"):
        raise SystemExit(_backup(args))


if __name__ == "__main__":
    main()
