/*
 * test_oauth.c - unit tests for the pure parts of the OAuth2 code
 * (cmocka): the form encoding and the one-line error of a token endpoint
 * refusal (src/creds_http.c), the presets and the check of the OAuth2
 * keys (src/creds_preset.c), and the login's query parsing, base64url and
 * PKCE challenge (src/creds_login.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "creds_http.h"
#include "creds_login.h"
#include "creds_preset.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the form ---- */

static void test_form_encoding(void **state)
{
	struct oauth_form f = { 0 };

	(void)state;
	oauth_form_add(&f, "grant_type", "refresh_token");
	oauth_form_add(&f, "skipped", NULL);
	oauth_form_add(&f, "scope", "https://x.example/SMTP.Send offline_access");
	oauth_form_add(&f, "v", "a&b=c+d~e_f.g-h\xc3\xa9");
	assert_false(f.oom);
	assert_string_equal(f.buf, "grant_type=refresh_token"
	                    "&scope=https%3A%2F%2Fx.example%2FSMTP.Send%20"
	                    "offline_access&v=a%26b%3Dc%2Bd~e_f.g-h%C3%A9");
	assert_int_equal(f.len, strlen(f.buf));
	oauth_form_free(&f);
	assert_null(f.buf);
}

/* ---- error lines ---- */

struct err_row {
	const char *json;
	long status;
	enum oauth_context ctx;
	const char *line;
	enum oauth_error kind;
};

#define LOGIN "outbox --oauth-login"
#define ADV_CLIENT "the client was refused (wrong, disabled or expired " \
	"credentials); check oauth-client-id and oauth-client-secret-file"

static const struct err_row ERR_ROWS[] = {
	{ "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS700082: "
	  "The refresh token has expired due to inactivity.\\r\\nTrace ID: "
	  "x\"}", 400, OAUTH_CTX_REFRESH,
	  "oauth-token-url: invalid_grant: the refresh token expired or was "
	  "revoked; run 'outbox --oauth-login' to sign in again (AADSTS700082: "
	  "The refresh token has expired due to inactivity.)", OAUTH_E_GRANT },
	{ "{\"error\": \"invalid_client\"}", 401, OAUTH_CTX_CLIENT,
	  "oauth-token-url: invalid_client: " ADV_CLIENT, OAUTH_E_CLIENT },
	{ "{\"error\":\"unauthorized_client\",\"error_description\":\"off\"}",
	  400, OAUTH_CTX_REFRESH,
	  "oauth-token-url: unauthorized_client: " ADV_CLIENT " (off)",
	  OAUTH_E_CLIENT },
	{ "{\"error\":\"invalid_scope\"}", 400, OAUTH_CTX_CLIENT,
	  "oauth-token-url: invalid_scope: the scope was refused; check "
	  "oauth-scope", OAUTH_E_SCOPE },
	{ "{\"error\":\"consent_required\"}", 400, OAUTH_CTX_LOGIN,
	  "oauth-token-url: consent_required: an administrator must grant "
	  "consent to the application (oauth-client-id) for its scopes "
	  "(oauth-scope)", OAUTH_E_CONSENT },
	{ "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS65001: "
	  "not consented\"}", 400, OAUTH_CTX_REFRESH,
	  "oauth-token-url: invalid_grant: an administrator must grant "
	  "consent to the application (oauth-client-id) for its scopes "
	  "(oauth-scope) (AADSTS65001: not consented)", OAUTH_E_CONSENT },
	{ "{\"error\":\"server_error\",\"error_description\":\"test failure\"}",
	  500, OAUTH_CTX_REFRESH,
	  "oauth-token-url: HTTP 500: server_error (test failure)",
	  OAUTH_E_OTHER },
	{ "<html>Bad gateway</html>", 502, OAUTH_CTX_REFRESH,
	  "oauth-token-url: HTTP 502", OAUTH_E_OTHER },
	/* a code that is not a word is not quoted */
	{ "{\"error\":\"bad code<b>\",\"error_description\":\"x\"}", 400,
	  OAUTH_CTX_REFRESH, "oauth-token-url: HTTP 400", OAUTH_E_OTHER },
	/* control characters in the description become '?' */
	{ "{\"error\":\"access_denied\",\"error_description\":\"a\x1b[31mb\tc\"}",
	  400, OAUTH_CTX_LOGIN,
	  "oauth-token-url: access_denied: the sign-in was denied; run "
	  "'outbox --oauth-login' again and approve the access (a?[31mb?c)",
	  OAUTH_E_DENIED },
	{ "{\"error\":\"authorization_pending\"}", 400, OAUTH_CTX_LOGIN,
	  "oauth-token-url: HTTP 400: authorization_pending", OAUTH_E_PENDING },
	{ "{\"error\":\"slow_down\"}", 400, OAUTH_CTX_LOGIN,
	  "oauth-token-url: HTTP 400: slow_down", OAUTH_E_SLOW_DOWN },
	{ "{\"error\":\"expired_token\"}", 400, OAUTH_CTX_LOGIN,
	  "oauth-token-url: expired_token: the sign-in code expired before it "
	  "was used; run 'outbox --oauth-login' again and sign in sooner",
	  OAUTH_E_EXPIRED },
};

static void test_error_lines(void **state)
{
	char out[1024];
	size_t i;

	(void)state;
	for (i = 0; i < N(ERR_ROWS); i++) {
		const struct err_row *r = &ERR_ROWS[i];
		enum oauth_error e = oauth_error_line(r->json, strlen(r->json),
		                                      r->status, "oauth-token-url",
		                                      r->ctx, LOGIN, out,
		                                      sizeof(out));

		if (strcmp(out, r->line) != 0 || e != r->kind)
			fail_msg("row %zu: got [%s] kind %d, expected [%s] kind %d",
			         i, out, (int)e, r->line, (int)r->kind);
	}
}

static void test_error_description_is_bounded(void **state)
{
	char json[1200], out[1024];
	const char *open;

	(void)state;
	snprintf(json, sizeof(json), "{\"error\":\"invalid_scope\","
	         "\"error_description\":\"%0500d\"}", 7);
	oauth_error_line(json, strlen(json), 400, "oauth-token-url",
	                 OAUTH_CTX_CLIENT, LOGIN, out, sizeof(out));
	open = strchr(out, '(');
	assert_non_null(open);
	/* "(" + 160 octets + "..." + ")" */
	assert_int_equal(strlen(open), 1 + 160 + 3 + 1);
	assert_string_equal(open + 1 + 160, "...)");
}

/* ---- presets and the key check ---- */

static void test_presets(void **state)
{
	struct config cfg;
	struct oauth_endpoints ep;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.oauth_provider = OAUTH_PROVIDER_MICROSOFT;
	oauth_endpoints(&cfg, &ep);
	assert_string_equal(ep.token_url, "https://login.microsoftonline.com/"
	                    "common/oauth2/v2.0/token");
	assert_string_equal(ep.device_url, "https://login.microsoftonline.com/"
	                    "common/oauth2/v2.0/devicecode");
	assert_string_equal(ep.auth_url, "https://login.microsoftonline.com/"
	                    "common/oauth2/v2.0/authorize");
	assert_string_equal(ep.scope, "https://outlook.office.com/SMTP.Send "
	                    "offline_access");
	assert_true(ep.prefer_device);
	assert_false(ep.offline_params);

	cfg.oauth_tenant = "contoso.onmicrosoft.com";
	cfg.oauth_grant = OAUTH_GRANT_CLIENT;
	oauth_endpoints(&cfg, &ep);
	assert_string_equal(ep.token_url, "https://login.microsoftonline.com/"
	                    "contoso.onmicrosoft.com/oauth2/v2.0/token");
	assert_string_equal(ep.scope, "https://outlook.office365.com/.default");

	memset(&cfg, 0, sizeof(cfg));
	cfg.oauth_provider = OAUTH_PROVIDER_GOOGLE;
	cfg.oauth_token_url = "https://127.0.0.1:8443/token";   /* overrides */
	oauth_endpoints(&cfg, &ep);
	assert_string_equal(ep.token_url, "https://127.0.0.1:8443/token");
	assert_string_equal(ep.device_url,
	                    "https://oauth2.googleapis.com/device/code");
	assert_string_equal(ep.auth_url,
	                    "https://accounts.google.com/o/oauth2/v2/auth");
	assert_string_equal(ep.scope, "https://mail.google.com/");
	assert_false(ep.prefer_device);
	assert_true(ep.offline_params);

	memset(&cfg, 0, sizeof(cfg));     /* no preset: only what is set */
	cfg.oauth_device_url = "https://idp.example/device";
	oauth_endpoints(&cfg, &ep);
	assert_string_equal(ep.token_url, "");
	assert_string_equal(ep.auth_url, "");
	assert_true(ep.prefer_device);
}

struct check_row {
	const char *keys;       /* which optional keys are set, see below */
	enum oauth_provider provider;
	enum oauth_grant grant;
	const char *tenant;
	const char *token_url;
	const char *why;        /* NULL: accepted; else a part of the reason */
};

/* keys: c = client id, r = refresh token file, s = secret file,
 * o = scope, t = token-command, u = no user, a = no auth xoauth2 */
static const struct check_row CHECK_ROWS[] = {
	{ "cr", OAUTH_PROVIDER_MICROSOFT, OAUTH_GRANT_REFRESH, NULL, NULL, NULL },
	{ "cr", OAUTH_PROVIDER_GOOGLE, OAUTH_GRANT_REFRESH, NULL, NULL, NULL },
	{ "cr", OAUTH_PROVIDER_NONE, OAUTH_GRANT_REFRESH, NULL,
	  "https://idp.example/token", NULL },
	{ "cs", OAUTH_PROVIDER_MICROSOFT, OAUTH_GRANT_CLIENT, "contoso.com",
	  NULL, NULL },
	{ "cr", OAUTH_PROVIDER_NONE, OAUTH_GRANT_REFRESH, NULL, NULL,
	  "oauth-token-url is missing (or set oauth-provider microsoft or "
	  "google)" },
	{ "c", OAUTH_PROVIDER_MICROSOFT, OAUTH_GRANT_REFRESH, NULL, NULL,
	  "oauth-grant refresh-token needs oauth-refresh-token-file (where "
	  "outbox --oauth-login stores the refresh token)" },
	{ "r", OAUTH_PROVIDER_MICROSOFT, OAUTH_GRANT_REFRESH, NULL, NULL,
	  "needs oauth-client-id" },
	{ "cs", OAUTH_PROVIDER_MICROSOFT, OAUTH_GRANT_CLIENT, NULL, NULL,
	  "oauth-grant client-credentials with oauth-provider microsoft needs "
	  "oauth-tenant" },
	{ "cs", OAUTH_PROVIDER_MICROSOFT, OAUTH_GRANT_CLIENT, "common", NULL,
	  "not common, organizations or consumers" },
	{ "c", OAUTH_PROVIDER_MICROSOFT, OAUTH_GRANT_CLIENT, "contoso.com",
	  NULL, "oauth-grant client-credentials needs oauth-client-secret-file" },
	{ "csr", OAUTH_PROVIDER_MICROSOFT, OAUTH_GRANT_CLIENT, "contoso.com",
	  NULL, "oauth-refresh-token-file is not used with oauth-grant "
	  "client-credentials (remove it)" },
	{ "cs", OAUTH_PROVIDER_NONE, OAUTH_GRANT_CLIENT, NULL,
	  "https://idp.example/token", "needs oauth-scope (for Microsoft 365: "
	  "https://outlook.office365.com/.default)" },
	{ "cso", OAUTH_PROVIDER_NONE, OAUTH_GRANT_CLIENT, NULL,
	  "https://idp.example/token", NULL },
	{ "cs", OAUTH_PROVIDER_GOOGLE, OAUTH_GRANT_CLIENT, NULL, NULL,
	  "oauth-provider google has no client-credentials grant" },
	{ "cr", OAUTH_PROVIDER_GOOGLE, OAUTH_GRANT_REFRESH, "contoso.com", NULL,
	  "oauth-tenant goes with oauth-provider microsoft" },
	{ "cr", OAUTH_PROVIDER_MICROSOFT, OAUTH_GRANT_REFRESH, "a/b", NULL,
	  "oauth-tenant must be a tenant ID or domain" },
	{ "cr", OAUTH_PROVIDER_NONE, OAUTH_GRANT_REFRESH, NULL,
	  "http://idp.example/token", "oauth-token-url must be an https:// URL" },
	{ "crt", OAUTH_PROVIDER_MICROSOFT, OAUTH_GRANT_REFRESH, NULL, NULL,
	  "set token-command or the oauth-* keys, not both" },
	{ "t", OAUTH_PROVIDER_NONE, OAUTH_GRANT_REFRESH, NULL, NULL, NULL },
	{ "cru", OAUTH_PROVIDER_MICROSOFT, OAUTH_GRANT_REFRESH, NULL, NULL,
	  "auth xoauth2/oauthbearer needs user" },
	{ "cra", OAUTH_PROVIDER_MICROSOFT, OAUTH_GRANT_REFRESH, NULL, NULL,
	  "token-command and oauth-* need auth xoauth2 or oauthbearer" },
	{ "", OAUTH_PROVIDER_NONE, OAUTH_GRANT_REFRESH, NULL, NULL,
	  "auth xoauth2/oauthbearer needs token-command, or oauth-token-url" },
};

static void test_config_check(void **state)
{
	char why[512];
	size_t i;

	(void)state;
	for (i = 0; i < N(CHECK_ROWS); i++) {
		const struct check_row *r = &CHECK_ROWS[i];
		struct config cfg;
		int rc;

		memset(&cfg, 0, sizeof(cfg));
		cfg.user = strchr(r->keys, 'u') ? NULL : "user";
		cfg.auth = strchr(r->keys, 'a') ? "PLAIN" : "XOAUTH2";
		cfg.oauth_client_id = strchr(r->keys, 'c') ? "id" : NULL;
		cfg.oauth_refresh_token_file = strchr(r->keys, 'r') ? "/rt" : NULL;
		cfg.oauth_client_secret_file = strchr(r->keys, 's') ? "/cs" : NULL;
		cfg.oauth_scope = strchr(r->keys, 'o') ? "api://x/.default" : NULL;
		cfg.token_command = strchr(r->keys, 't') ? "/bin/tok" : NULL;
		cfg.oauth_provider = r->provider;
		cfg.oauth_grant = r->grant;
		cfg.oauth_tenant = (char *)r->tenant;
		cfg.oauth_token_url = (char *)r->token_url;
		why[0] = '\0';
		rc = oauth_config_check(&cfg, why, sizeof(why));
		if (r->why == NULL && rc != 0)
			fail_msg("row %zu refused: %s", i, why);
		if (r->why != NULL && (rc == 0 || strstr(why, r->why) == NULL))
			fail_msg("row %zu: rc %d [%s], expected [%s]", i, rc, why,
			         r->why);
	}
}

static void test_login_command(void **state)
{
	struct config cfg;
	char out[700];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.path = (char *)CONFIG_DEFAULT_PATH;
	oauth_login_command(&cfg, out, sizeof(out));
	assert_string_equal(out, "outbox --oauth-login");
	cfg.path = "/srv/app/outbox.conf";
	oauth_login_command(&cfg, out, sizeof(out));
	assert_string_equal(out, "outbox -C /srv/app/outbox.conf --oauth-login");
	cfg.account = "alerts";
	oauth_login_command(&cfg, out, sizeof(out));
	assert_string_equal(out, "outbox -C /srv/app/outbox.conf --oauth-login "
	                    "--account alerts");
	cfg.account = NULL;
	cfg.path = "(environment)";
	oauth_login_command(&cfg, out, sizeof(out));
	assert_string_equal(out, "outbox --oauth-login");
}

/* ---- the keys in a config file ---- */

/* config_load of "smarthost h\nuser u\nauth xoauth2\n" + extra: 0 or -1
 * with the error in err. */
static int load(const char *extra, char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	char path[64];
	struct config cfg;
	int fd, rc;
	FILE *f;

	if (tmp == NULL || tmp[0] != '/' || strlen(tmp) > 40)
		tmp = "/tmp";
	snprintf(path, sizeof(path), "%s/test_oauth.XXXXXX", tmp);
	fd = mkstemp(path);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;

	assert_non_null(f);
	fprintf(f, "smarthost mail.example.com\nuser u\nauth xoauth2\n%s",
	        extra);
	fclose(f);
	err[0] = '\0';
	rc = config_load(path, &cfg, err, errlen);
	if (rc == 0) {
		assert_int_equal(cfg.oauth_grant, OAUTH_GRANT_CLIENT);
		assert_int_equal(cfg.oauth_provider, OAUTH_PROVIDER_MICROSOFT);
		assert_string_equal(cfg.oauth_tenant, "contoso.com");
		assert_string_equal(cfg.oauth_scope, "api://a/.default b");
	}
	config_free(&cfg);
	unlink(path);
	return rc;
}

static void test_keys_in_a_file(void **state)
{
	static const char good[] =
		"oauth-provider microsoft\noauth-grant client-credentials\n"
		"oauth-tenant contoso.com\noauth-client-id id\n"
		"oauth-client-secret-file /etc/outbox.client-secret\n"
		"oauth-scope \"api://a/.default b\"\n";
	static const struct { const char *extra, *err; } bad[] = {
		{ "oauth-grant implicit\n", ":4: oauth-grant: must be "
		  "refresh-token or client-credentials" },
		{ "oauth-provider yahoo\n", ":4: oauth-provider: must be "
		  "microsoft, google or none" },
		{ "oauth-scope \"a  b\"\n", ":4: oauth-scope: scopes are "
		  "printable ASCII separated by single spaces" },
		{ "oauth-scope \"a \"\n", ":4: oauth-scope: scopes are " },
		{ "oauth-tenant \"a b\"\n", ":4: oauth-tenant: value must not "
		  "contain spaces" },
		{ "oauth-provider microsoft\noauth-client-id id\n",
		  "oauth-grant refresh-token needs oauth-refresh-token-file" },
	};
	char err[512];
	size_t i;

	(void)state;
	if (load(good, err, sizeof(err)) != 0)
		fail_msg("good config refused: %s", err);
	for (i = 0; i < N(bad); i++) {
		if (load(bad[i].extra, err, sizeof(err)) == 0 ||
		    strstr(err, bad[i].err) == NULL)
			fail_msg("row %zu: [%s], expected [%s]", i, err, bad[i].err);
	}
}

/* ---- the login refuses configs it cannot use, before any request ---- */

static void test_login_refusals(void **state)
{
	struct login_opts lo = { LOGIN_FLOW_DEFAULT, 0, 0, stdout };
	struct config cfg;
	char err[512];

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.user = "u";
	cfg.oauth_client_id = "id";
	cfg.oauth_refresh_token_file = "/nonexistent/rt";
	assert_int_equal(login_run(&cfg, &lo, err, sizeof(err)), OB_CONFIG);
	assert_non_null(strstr(err, "--oauth-login needs auth xoauth2"));
	cfg.auth = "XOAUTH2";
	cfg.token_command = "/bin/true";
	assert_int_equal(login_run(&cfg, &lo, err, sizeof(err)), OB_CONFIG);
	assert_non_null(strstr(err, "with token-command, that program"));
	cfg.token_command = NULL;
	cfg.oauth_token_url = "https://127.0.0.1:1/token";
	lo.flow = LOGIN_FLOW_DEVICE;       /* no device endpoint configured */
	assert_int_equal(login_run(&cfg, &lo, err, sizeof(err)), OB_CONFIG);
	assert_string_equal(err, "the device login needs oauth-device-url (or "
	                    "oauth-provider microsoft; or use --browser)");
	lo.flow = LOGIN_FLOW_DEFAULT;      /* no preset, no URL: the browser */
	assert_int_equal(login_run(&cfg, &lo, err, sizeof(err)), OB_CONFIG);
	assert_string_equal(err, "the browser login needs oauth-auth-url (or "
	                    "oauth-provider; or use --device)");
}

/* ---- the login's pure parts ---- */

static void test_query_get(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(login_query_get("codex=1&code=a%2Fb+c&state=s", "code",
	                                 out, sizeof(out)), 0);
	assert_string_equal(out, "a/b c");
	assert_int_equal(login_query_get("code=1&state=", "state", out,
	                                 sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(login_query_get("error=access_denied", "error", out,
	                                 sizeof(out)), 0);
	assert_string_equal(out, "access_denied");
	assert_int_equal(login_query_get("code=1", "state", out, sizeof(out)),
	                 -1);
	assert_int_equal(login_query_get("", "code", out, sizeof(out)), -1);
	assert_int_equal(login_query_get("code=%zz", "code", out, sizeof(out)),
	                 -1);
	assert_int_equal(login_query_get("code=ab%2", "code", out, sizeof(out)),
	                 -1);
	assert_int_equal(login_query_get("code=a%00b", "code", out,
	                                 sizeof(out)), -1);
	assert_int_equal(login_query_get("code=123456", "code", out, 6), -1);
	assert_int_equal(login_query_get("code=12345", "code", out, 6), 0);
}

static void test_b64url_and_pkce(void **state)
{
	/* RFC 7636 appendix B */
	static const unsigned char octets[32] = {
		116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173,
		187, 186, 22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83,
		132, 141, 121 };
	char v[64], c[64];

	(void)state;
	login_b64url(octets, sizeof(octets), v);
	assert_string_equal(v, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
	assert_int_equal(login_pkce_challenge(v, c, sizeof(c)), 0);
	assert_string_equal(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
	assert_int_equal(login_pkce_challenge(v, c, 43), -1);
	login_b64url((const unsigned char *)"\xfb\xff", 2, v);
	assert_string_equal(v, "-_8");
	login_b64url((const unsigned char *)"f", 1, v);
	assert_string_equal(v, "Zg");
	login_b64url((const unsigned char *)"", 0, v);
	assert_string_equal(v, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form_encoding),
		cmocka_unit_test(test_error_lines),
		cmocka_unit_test(test_error_description_is_bounded),
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_config_check),
		cmocka_unit_test(test_login_command),
		cmocka_unit_test(test_keys_in_a_file),
		cmocka_unit_test(test_login_refusals),
		cmocka_unit_test(test_query_get),
		cmocka_unit_test(test_b64url_and_pkce),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
