"""Static checks on small sources: each rule fires on the unsafe form and stays quiet on the safe one."""

from __future__ import annotations

import pytest

from backend_implementor.verify.static import scan
from backend_implementor.verify.static.jssource import strip_comments
from backend_implementor.verify.static.rules import check_code, tainted_names
from backend_implementor.verify.static.secrets_check import check_secrets


def ids(hits) -> list[tuple[str, int]]:
    return [(h.id, h.line) for h in hits]


@pytest.mark.parametrize(
    "src",
    [
        "const AWS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';",
        "token = 'ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'",
        "const slack = 'xoxb-123456789012-abcdefABCDEF';",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----",
        "const JWT_SECRET = 'q8Vt3nZr7LmX2pKd9WsY4bHc6JfA1eUo';",
        "module.exports = { jwtSecret: 'Zx9!kP2@mQ7#rT4$' };",
        "const secret = process.env.JWT_SECRET || 'dev-secret';",
        "const apiKey = process.env.API_KEY ?? 'k3y';".replace("k3y", "k3y-fallback"),
    ],
)
def test_secrets_found(src):
    hits = check_secrets(src)
    assert [h.cwe for h in hits] == [798]
    assert "q8Vt3nZr7LmX2pKd9WsY4bHc6JfA1eUo" not in hits[0].code  # the value is masked in evidence


@pytest.mark.parametrize(
    "src",
    [
        "const SECRET = process.env.APP_SECRET || crypto.randomBytes(32).toString('hex');",
        "const passwordField = 'password';",
        "res.json({ access_token: token, token_type: 'bearer' });",
        "const secretName = 'JWT_SECRET_VALUE';",
        "const tokenKey = 'access_token';",
        "if (!password) throw new Error('password is required here');",
        "const password = req.body.password;",
        "const apiKey = '<your-api-key-here>';",
        "const TOKEN_HEADER = 'authorization';",
    ],
)
def test_secrets_not_found(src):
    assert check_secrets(src) == []


def test_env_files(tmp_path):
    (tmp_path / ".env").write_text("PORT=3000\nJWT_SECRET=Hj8kL2mN9pQ4rS6tV1wX\nDB_NAME=app\n")
    (tmp_path / ".env.example").write_text("JWT_SECRET=Hj8kL2mN9pQ4rS6tV1wX\n")
    found = scan(tmp_path)
    assert [(f.cwe, f.evidence.location) for f in found] == [(798, ".env:2")]


@pytest.mark.parametrize(
    "src",
    [
        "const { email } = req.body;\ndb.query(`SELECT * FROM users WHERE email = '${email}'`);",
        "await pool.query('SELECT * FROM items ORDER BY ' + req.query.sort);",
        "const id = req.params.id;\nconst sql = `DELETE FROM notes WHERE id = ${id}`;\nawait db.run(sql);",
        "const name = ctx.query.name;\nlet q = 'SELECT * FROM t WHERE 1=1';\nq += ` AND name = '${name}'`;\n"
        "const r = await knex.raw(q);",
        "const { id } = req.params;\nprisma.$queryRawUnsafe(`SELECT * FROM users WHERE id = ${id}`)",
        # pg-promise and mysql, through a helper function called with request data
        'function byName(name) {\n  return db.any("SELECT * FROM users WHERE name = \'" + name + "\'");\n}\n'
        "app.get('/u', async (req, res) => res.json(await byName(req.query.name)));",
        "const find = (email) => connection.query('SELECT * FROM u WHERE email = \"' + email + '\"', cb);\n"
        "router.post('/f', (req, res) => find(req.body.email));",
        "const q = req.query.q;\nconst rows = await db.manyOrNone(`SELECT * FROM t WHERE a LIKE '%${q}%'`);",
        # a wrapper of this file around the driver, called with SQL built from the request
        "function all(sql, params = []) {\n  const stmt = db.prepare(sql);\n  return stmt.all(params);\n}\n"
        "app.get('/p/:id', (request) => all(`SELECT * FROM p WHERE id = ${request.params.id}`));",
    ],
)
def test_sql_string_building_found(src):
    assert [h.cwe for h in check_code(src)] == [89]


@pytest.mark.parametrize(
    "src",
    [
        "db.query('SELECT * FROM users WHERE email = $1', [email]);",
        "db.query('SELECT * FROM p WHERE name ILIKE $1', [`%${name}%`]);",
        "sql`SELECT * FROM users WHERE id = ${id}`;",
        "db.query(`SELECT * FROM ${TABLE} WHERE id = $1`, [id]);",
        "app.get(`/users/${id}`, handler);",
        "const m = /where (\\w+)/.exec(req.body.text);",
        "// db.query(`SELECT * FROM users WHERE id = ${id}`)",
        "const ORDER = { a: 'SELECT * FROM t ORDER BY a LIMIT $1' };\nconst sql = ORDER[req.query.sort];\ndb.query(sql, [n]);",
        # Concatenated, but only server-side values reach the SQL: not injection, no finding.
        "const id = crypto.randomUUID();\ndb.query(`INSERT INTO t (id) VALUES ('${id}')`);",
        "const table = 'users';\ndb.one('SELECT count(*) FROM ' + table);",
        "for (const t of TABLES) await db.none(`TRUNCATE ${t}`);",
        "const name = req.body.name;\ndb.one('SELECT * FROM users WHERE name = $1', [name]);",
    ],
)
def test_sql_safe_forms_not_found(src):
    assert check_code(src) == []


def test_code_and_command_injection_follow_request_data():
    src = (
        "const { exec, execFile } = require('child_process');\n"
        "app.post('/calc', (req, res) => {\n"
        "  const { expression } = req.body;\n"
        "  res.json({ v: eval(expression) });\n"
        "});\n"
        "app.get('/ping', (req, res) => exec('ping -c 1 ' + req.query.host, cb));\n"
        "app.get('/ls', (req, res) => execFile('ls', [req.query.dir], cb));\n"
        "const f = new Function('a', 'return a + 1');\n"
        "eval('1 + 1');\n"
    )
    assert tainted_names(strip_comments(src)) >= {"expression"}
    assert sorted((h.id, h.cwe, h.line) for h in check_code(src)) == [
        ("static-code-injection", 94, 4),
        ("static-command-injection", 78, 6),
    ]


def test_regex_exec_is_not_a_shell():
    src = "const cp = require('node:child_process');\nconst m = /x/.exec(req.body.a);\ncp.exec(`tar ${req.params.f}`);"
    assert ids(check_code(src)) == [("static-command-injection", 3)]


@pytest.mark.parametrize(
    ("src", "flagged"),
    [
        ("app.use(cors({ origin: true, credentials: true }));", True),
        ("app.use(cors({ credentials: true, origin: '*' }));", True),
        ("app.use(cors({ origin: (o, cb) => cb(null, true), credentials: true }));", True),
        (
            "res.setHeader('Access-Control-Allow-Origin', req.headers.origin);\nres.setHeader('Access-Control-Allow-Credentials', 'true');",
            True,
        ),
        ("app.use(cors());", False),
        ("app.use(cors({ origin: ['https://app.example.com'], credentials: true }));", False),
        ("app.use(cors({ origin: '*' }));", False),
    ],
)
def test_cors(src, flagged):
    assert [h.cwe for h in check_code(src)] == ([942] if flagged else [])


def test_strip_comments_keeps_offsets_strings_templates_and_regexes():
    src = "const a = '// not a comment'; // gone\n/* gone\n too */ const r = /[/*]+/g; const t = `${a /* in */}`;"
    out = strip_comments(src)
    assert len(out) == len(src) and out.count("\n") == src.count("\n")
    assert "gone" not in out and "'// not a comment'" in out and "/[/*]+/g" in out


def test_scan_skips_vendor_and_test_dirs_and_reports_locations(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "db.js").write_text(
        "const x = req.query.x;\n\ndb.query(`SELECT * FROM t WHERE a = '${x}'`);\n"
    )
    for skipped in ("node_modules/pkg", "dist", "tests", ".git"):
        (tmp_path / skipped).mkdir(parents=True)
        (tmp_path / skipped / "x.js").write_text("eval(req.body.code); const k = 'AKIAIOSFODNN7EXAMPLE';")
    (tmp_path / "src" / "app.test.js").write_text("const k = 'AKIAIOSFODNN7EXAMPLE';")
    found = scan(tmp_path)
    assert [(f.cwe, f.id, f.stage, f.evidence.location) for f in found] == [
        (89, "static-sqli", "static", "src/db.js:3")
    ]
    assert "SELECT" in found[0].evidence.request


@pytest.mark.parametrize(
    "src",
    [
        "const token = jwt.sign({ sub: u.id }, 'SuperSecret', { expiresIn: '1h' });",
        "app.use(session({ secret: 'keyboard cat', resave: false }));",
        "const JWT_KEY = 'changeme';\njwt.verify(t, JWT_KEY);",
        "const KEY = process.env.JWT_SECRET || 'dev';\njwt.sign(p, KEY);",
        "app.use(cookieParser('Keyboard Cat'));",
        "app.keys = ['im a newer secret'];",
        "jsonwebtoken.sign(payload, 'your-secret-key');",
    ],
)
def test_literal_signing_keys_are_found_however_plain(src):
    assert [h.cwe for h in check_secrets(src)] == [798]


@pytest.mark.parametrize(
    "src",
    [
        "jwt.sign(p, process.env.JWT_SECRET);",
        "const secret = crypto.randomBytes(32).toString('hex');\njwt.sign(p, secret);",
        "app.use(session({ secret: process.env.SESSION_SECRET, resave: false }));",
        "app.use(session({ store, secret: [process.env.A], cookie: { httpOnly: true } }));",
        "jwt.verify(token, publicKey, { algorithms: ['RS256'] });",
    ],
)
def test_signing_keys_from_the_environment_or_random_are_not(src):
    assert check_secrets(src) == []
