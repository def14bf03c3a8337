/* main.c: stewardctl's entry point: finds the command words, parses global
 * and command flags (args.c), prints help, checks the API key is there for
 * API routes, and runs the handler. Exit codes: 0 ok, 1 failure (server
 * error, network, partial success), 2 usage error. */
#include "ctl/ctl.h"
#include "ctl/catalog.h"
#include "ctl/certs.h"
#include "ctl/enroll.h"
#include "ctl/operators.h"
#include "ctl/compliance.h"
#include "ctl/inventory.h"
#include "ctl/profiles.h"
#include "ctl/push.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#ifndef STEWARD_VERSION
#define STEWARD_VERSION "0.0.0-dev" /* CMake defines the real one */
#endif

struct command {
    const char *group;
    const char *action; /* NULL for one-word commands */
    const struct ctl_optspec *opts;
    int needs_key;
    int (*run)(struct ctl *c, const struct ctl_args *a);
    const char *summary;
    const char *usage; /* the lines after "usage: stewardctl " */
};

static const struct command COMMANDS[] = {
    {"devices", "list", ctl_devices_list_opts, 1, ctl_devices_list,
     "List enrollments (devices, user channels)",
     "devices list [--search S] [--status authenticated|enrolled|checked_out]\n"
     "                  [--serial S] [--filter KEY=VALUE ...] [--limit N] [--offset N]\n\n"
     "  --search S   substring of the id, serial number or device name\n"
     "  --status S   authenticated, enrolled or checked_out\n"
     "  --serial S   exact serial number\n"
     "  --filter K=V an inventory filter; repeat to combine (all must hold):\n"
     "               os=17.4  os_min=17  os_max=17.6.1  model=iPhone15,2\n"
     "               supervised=true  passcode=false  encryption=3  battery_below=20\n"
     "               app=BUNDLE_ID  profile=PROFILE_ID  cert_expiring_days=30\n"
     "               seen_before=TIME  seen_after=TIME  (Unix seconds or 2026-11-28)\n"
     "  --limit N    at most N devices (1-1000, server default 100)\n"
     "  --offset N   skip the first N devices\n"},
    {"devices", "inventory", ctl_devices_inventory_opts, 1, ctl_devices_inventory,
     "Show a section of a device's inventory",
     "devices inventory ID SECTION [--limit N]\n\n"
     "  SECTION   device, security, profiles, certificates, apps, managed-apps,\n"
     "            provisioning-profiles, restrictions or history\n"
     "  --limit N at most N rows (server default 1000)\n"},
    {"devices", "show", NULL, 1, ctl_devices_show, "Show one enrollment",
     "devices show ID\n\n"
     "  ID   a UDID, an EnrollmentID or \"<device id>:<UserID>\"\n"},
    {"commands", "send", ctl_commands_send_opts, 1, ctl_commands_send,
     "Queue an MDM command for one or more devices",
     "commands send --device ID [--device ID ...]\n"
     "                  (--type RequestType [--set Key=Value ...] [--queries Q1,Q2]\n"
     "                   | --json-file FILE | --plist FILE) [--uuid UUID] [--ttl S]\n\n"
     "  --device ID        a target enrollment; repeat for more\n"
     "  --type T           the RequestType, e.g. DeviceInformation, ProfileList\n"
     "  --set Key=Value    a command key: true/false become booleans, integers\n"
     "                     (no leading zero) numbers, anything else a string;\n"
     "                     A.B=V nests\n"
     "  --queries Q1,Q2    the Queries array (DeviceInformation)\n"
     "  --json-file FILE   the \"command\" object as JSON (- reads stdin)\n"
     "  --plist FILE       a full command plist (Command, optional CommandUUID)\n"
     "  --uuid UUID        the CommandUUID to use (generated when absent)\n"
     "  --ttl S            deliver within S seconds or mark it Expired\n"},
    {"commands", "list", ctl_commands_list_opts, 1, ctl_commands_list,
     "A device's command queue and history, newest first",
     "commands list ID [--limit N]\n\n"
     "  --limit N   at most N commands (server default 100)\n"},
    {"commands", "cancel", NULL, 1, ctl_commands_cancel,
     "Cancel a waiting command on every device, or remove it from one device",
     "commands cancel UUID | commands cancel ID UUID\n\n"
     "  UUID      cancel it on every device it still waits for (kept as Canceled)\n"
     "  ID UUID   remove it from this device's queue\n"},
    {"commands", "show", NULL, 1, ctl_commands_show,
     "A command's status on each device, its deadline and retry lineage",
     "commands show UUID\n"},
    {"commands", "retry", ctl_ttl_opts, 1, ctl_commands_retry,
     "Queue a failed or expired command again for the devices it failed on",
     "commands retry UUID [--ttl SECONDS]\n"},
    {"device", "lock", ctl_device_lock_opts, 1, ctl_device_lock, "Lock a device (DeviceLock)",
     "device lock ID [--message TEXT] [--phone NUMBER] [--ttl SECONDS]\n"},
    {"device", "wipe", ctl_device_wipe_opts, 1, ctl_device_wipe,
     "Erase a device (EraseDevice); asks for its serial number unless --yes",
     "device wipe ID [--yes] [--preserve-data-plan] [--disallow-proximity-setup] [--ttl S]\n"},
    {"device", "clear-passcode", ctl_ttl_opts, 1, ctl_device_clear_passcode,
     "Clear a device's passcode with its stored UnlockToken (ClearPasscode)",
     "device clear-passcode ID [--ttl SECONDS]\n"},
    {"device", "query", NULL, 1, ctl_device_query,
     "Queue DeviceInformation, SecurityInfo and the lists (profiles, certificates, apps, …)",
     "device query ID\n"},
    {"device", "settings", ctl_device_settings_opts, 1, ctl_device_settings,
     "Change settings (Settings command)",
     "device settings ID [--data-roaming on|off] [--voice-roaming on|off]\n"
     "                  [--personal-hotspot on|off] [--bluetooth on|off] [--name NAME]\n"
     "                  [--time-zone TZ] [--ttl SECONDS]\n"},
    {"apps", "install", ctl_apps_install_opts, 1, ctl_apps_install,
     "Install an app (InstallApplication)",
     "apps install ID (--itunes-id N | --manifest-url URL | --bundle-id B\n"
     "                  | --app APPID [--redemption-code]) [--management-flags N] [--ttl S]\n\n"
     "  --app APPID        an app added with apps upload (enterprise .ipa or App Store)\n"
     "  --redemption-code  also send one VPP code of the app's pool (ApplyRedemptionCode)\n"},
    {"apps", "remove", NULL, 1, ctl_apps_remove, "Remove a managed app (RemoveApplication)",
     "apps remove ID BUNDLE_ID\n"},
    {"apps", "upload", ctl_apps_upload_opts, 1, ctl_apps_upload,
     "Upload an enterprise .ipa; steward hosts it and its manifest",
     "apps upload FILE.ipa --bundle-id B [--version V] [--name NAME]\n"},
    {"apps", "list", NULL, 1, ctl_apps_list, "Apps steward knows, with their code pools",
     "apps list\n"},
    {"apps", "codes", ctl_apps_codes_opts, 1, ctl_apps_codes,
     "Import VPP redemption codes into an app's pool",
     "apps codes import APPID (--file FILE | CODE ...)\n"},
    {"certs", "list", ctl_certs_list_opts, 1, ctl_certs_list,
     "List device certificates and certificate requests",
     "certs list [--status pending|issued|rejected|revoked] [--expiring DAYS]\n"
     "                  [--device ID] [--limit N] [--offset N]\n\n"
     "  --status S       pending, issued, rejected or revoked\n"
     "  --expiring DAYS  only certificates still valid that expire within DAYS days\n"
     "  --device ID      only the certificates of this enrollment\n"
     "  --limit N        at most N certificates (1-1000, server default 100)\n"
     "  --offset N       skip the first N certificates\n"},
    {"certs", "show", NULL, 1, ctl_certs_show, "Show one certificate record",
     "certs show SERIAL\n\n"
     "  SERIAL   hex, as `certs list` shows it (case and ':' separators do not matter)\n"},
    {"certs", "revoke", ctl_certs_revoke_opts, 1, ctl_certs_revoke,
     "Revoke an issued certificate (the device can no longer check in)",
     "certs revoke SERIAL [--reason TEXT]\n\n"
     "  --reason TEXT   why, kept with the record\n"},
    {"certs", "expiring", ctl_certs_expiring_opts, 1, ctl_certs_expiring,
     "Issued certificates that expire soon",
     "certs expiring [--days N] [--limit N] [--offset N]\n\n"
     "  --days N   the window, in days (default 30)\n"},
    {"certs", "approve", NULL, 1, ctl_certs_approve,
     "Approve a pending SCEP request: the certificate is issued", "certs approve SERIAL\n"},
    {"certs", "reject", NULL, 1, ctl_certs_reject,
     "Reject a pending SCEP request", "certs reject SERIAL\n"},
    {"scep", "challenge", ctl_scep_challenge_opts, 1, ctl_scep_challenge,
     "Make a one-time SCEP challenge password",
     "scep challenge [--ttl SECONDS] [--for TEXT]\n\n"
     "  --ttl SECONDS   how long it stays valid (server default scep_challenge_ttl)\n"
     "  --for TEXT      a note on who it is for, kept with it\n"},
    {"enroll", "profile", ctl_enroll_profile_opts, 1, ctl_enroll_profile,
     "Download the signed enrollment profile (Apple Configurator, USB)",
     "enroll profile [--user NAME] [--configurator] > enroll.mobileconfig\n\n"
     "  --user NAME      record the enrollment against this enrollment user\n"
     "  --configurator   record it as an Apple Configurator enrollment\n"},
    {"devices", "unenroll", NULL, 1, ctl_devices_unenroll,
     "End management: RemoveProfile for the enrollment profile, record kept",
     "devices unenroll ID\n"},
    {"enroll", "list", ctl_enroll_list_opts, 1, ctl_enroll_list,
     "Enrollment records: who enrolled which device, when and how",
     "enroll list [--user NAME] [--status S] [--limit N] [--offset N]\n\n"
     "  --status S   issued, pending, enrolled, failed, expired or unenrolled\n"},
    /* profiles and groups (issue 7) */
    {"profiles", "build", NULL, 1, ctl_profiles_build, "Build a configuration profile from a JSON spec",
     "profiles build SPEC.json\n\n"
     "  SPEC.json   {\"identifier\", \"display_name\", \"payloads\": [{\"PayloadType\": ...}]}\n"
     "              (docs/profiles.md); a new version when the identifier exists\n"},
    {"profiles", "create", NULL, 1, ctl_profiles_build, "Same as profiles build",
     "profiles create SPEC.json\n"},
    {"profiles", "import", NULL, 1, ctl_profiles_import,
     "Import a profile file (XML, binary or signed .mobileconfig)",
     "profiles import FILE\n"},
    {"profiles", "list", NULL, 1, ctl_profiles_list, "List configuration profiles",
     "profiles list\n"},
    {"profiles", "show", NULL, 1, ctl_profiles_show, "Show a profile (secrets left out)",
     "profiles show IDENTIFIER\n"},
    {"profiles", "download", ctl_profiles_download_opts, 1, ctl_profiles_download,
     "Download a profile, signed by the server (secrets left out)",
     "profiles download IDENTIFIER [--out FILE] [--version N]\n\n"
     "  --out FILE    where to write it (default IDENTIFIER.mobileconfig)\n"},
    {"profiles", "export", ctl_profiles_download_opts, 1, ctl_profiles_download,
     "Same as profiles download", "profiles export IDENTIFIER [--out FILE] [--version N]\n"},
    {"profiles", "delete", NULL, 1, ctl_profiles_delete,
     "Delete a profile (devices that have it get a RemoveProfile)",
     "profiles delete IDENTIFIER\n"},
    {"profiles", "status", NULL, 1, ctl_profiles_status,
     "Each device's state for a profile (desired against installed)",
     "profiles status IDENTIFIER\n"},
    {"groups", "create", ctl_groups_create_opts, 1, ctl_groups_create, "Create a device group",
     "groups create NAME [--description TEXT] [--rules JSON]\n\n"
     "  --rules JSON  membership by inventory: {\"model\", \"os_min\", \"os_max\",\n"
     "                \"supervised\", \"user\", \"attributes\": {NAME: VALUE}}\n"},
    {"groups", "list", NULL, 1, ctl_groups_list, "List device groups", "groups list\n"},
    {"groups", "show", NULL, 1, ctl_groups_show, "Show a group: rules, static members, devices, profiles",
     "groups show NAME\n"},
    {"groups", "add", NULL, 1, ctl_groups_add, "Add devices to a group",
     "groups add NAME DEVICE...\n"},
    {"groups", "remove", NULL, 1, ctl_groups_remove, "Remove a device from a group",
     "groups remove NAME DEVICE\n"},
    {"groups", "assign", NULL, 1, ctl_groups_assign, "Assign a profile to a group",
     "groups assign NAME PROFILE\n"},
    {"groups", "unassign", NULL, 1, ctl_groups_unassign, "Unassign a profile from a group",
     "groups unassign NAME PROFILE\n"},
    /* operators (issue 9): users, keys, audit, webhooks */
    {"whoami", NULL, NULL, 1, ctl_whoami, "Who the API key is, and its role", "whoami\n"},
    {"users", "list", NULL, 1, ctl_users_list, "List web console users", "users list\n"},
    {"users", "add", ctl_users_opts, 1, ctl_users_add, "Add a web console user",
     "users add NAME --role viewer|operator|admin [--password-file FILE]\n\n"
     "  the password: FILE's first line, or STEWARD_NEW_PASSWORD (8+ characters)\n"},
    {"users", "set", ctl_users_opts, 1, ctl_users_set, "Change a user's role or password (unlocks it)",
     "users set NAME [--role R] [--password-file FILE]\n"},
    {"users", "delete", NULL, 1, ctl_users_delete, "Delete a web console user", "users delete NAME\n"},
    {"keys", "list", NULL, 1, ctl_keys_list, "List API keys (never the secrets)", "keys list\n"},
    {"keys", "create", ctl_keys_opts, 1, ctl_keys_create, "Create an API key (printed once)",
     "keys create NAME --role viewer|operator|admin\n"},
    {"keys", "revoke", NULL, 1, ctl_keys_revoke, "Revoke an API key", "keys revoke ID\n"},
    {"audit", "list", ctl_audit_opts, 1, ctl_audit_list, "Show the audit log, newest first",
     "audit list [--actor user:NAME|key:NAME] [--method M] [--target T] [--since UNIX]\n"
     "           [--until UNIX] [--failed] [--limit N] [--offset N]\n"},
    {"audit", "export", ctl_audit_opts, 1, ctl_audit_export, "Export the audit log (CSV or JSON lines)",
     "audit export --format csv|jsonl [the filters of audit list]\n"},
    {"webhooks", "list", NULL, 1, ctl_webhooks_list, "List webhooks", "webhooks list\n"},
    {"webhooks", "add", ctl_webhooks_opts, 1, ctl_webhooks_add, "Add a webhook",
     "webhooks add URL [--events LIST] [--secret S] [--description D]\n\n"
     "  --events LIST   comma-separated event types, \"mdm.*\" for a family, \"*\" (default) all\n"},
    {"webhooks", "set", ctl_webhooks_opts, 1, ctl_webhooks_set, "Change a webhook",
     "webhooks set ID [--url U] [--events LIST] [--secret S] [--enable|--disable]\n"},
    {"webhooks", "delete", NULL, 1, ctl_webhooks_delete, "Delete a webhook", "webhooks delete ID\n"},
    {"webhooks", "deliveries", ctl_deliveries_opts, 1, ctl_webhooks_deliveries,
     "A webhook's delivery log", "webhooks deliveries ID [--status S] [--limit N] [--offset N]\n"},
    {"webhooks", "test", NULL, 1, ctl_webhooks_test, "Send a test event to a webhook",
     "webhooks test ID\n"},
    {"compliance", "policies", ctl_compliance_policies_opts, 1, ctl_compliance_policies,
     "Compliance policies: list, create, show, delete",
     "compliance policies list | create --file FILE | show ID | delete ID\n\n"
     "  --file FILE   the policy as JSON (docs/compliance.md; - reads stdin)\n"},
    {"compliance", "status", ctl_compliance_status_opts, 1, ctl_compliance_status,
     "The fleet's compliance, or one device's with its history",
     "compliance status [ID] [--state S] [--policy ID] [--limit N]\n\n"
     "  ID           one device: each policy's state, actions fired, history\n"
     "  --state S    compliant, noncompliant or unknown (default: the last two)\n"
     "  --policy ID  only this policy's devices\n"},
    {"compliance", "evaluate", ctl_compliance_evaluate_opts, 1, ctl_compliance_evaluate,
     "Evaluate the fleet (or one device) against the policies now",
     "compliance evaluate [--device ID]\n"},
    {"devices", "lost", ctl_devices_lost_opts, 1, ctl_devices_lost,
     "Lost mode: lock with a message, remove managed profiles and apps",
     "devices lost ID [--message TEXT] [--phone NUMBER]\n\n"
     "  The wipe stays a separate step: devices wipe ID --confirm ID\n"},
    {"devices", "wipe", ctl_devices_wipe_opts, 1, ctl_devices_wipe,
     "Erase a device (EraseDevice); needs --confirm with the same id",
     "devices wipe ID --confirm ID\n"},
    /* push (issue 5) */
    {"push-cert", "import", ctl_pushcert_import_opts, 1, ctl_pushcert_import,
     "Import an APNs push certificate (PEM or PKCS#12)",
     "push-cert import (--cert FILE --key FILE | --p12 FILE) [--password-file FILE] [--force]\n\n"
     "  --cert, --key        the certificate Apple issued and its private key (PEM)\n"
     "  --p12 FILE           a PKCS#12 export holding both; its password comes from\n"
     "                       --password-file or STEWARD_P12_PASSWORD\n"
     "  --force              import a new topic although enrolled devices use another\n"},
    {"push-cert", "list", NULL, 1, ctl_pushcert_list,
     "Push certificates: topics, expiry, warnings, devices",
     "push-cert list\n"},
    {"push-cert", "show", NULL, 1, ctl_pushcert_show, "Show one push certificate",
     "push-cert show TOPIC\n"},
    {"push", NULL, ctl_push_opts, 1, ctl_push, "Push devices now (wake them to check in)",
     "push ID... [--file FILE] [--chunk N]\n\n"
     "  --file FILE   more ids, one per line (- reads stdin)\n"
     "  --chunk N     ids per request (default 500); a progress bar shows for many\n"},
    {"version", NULL, NULL, 0, ctl_version, "stewardctl's and the server's version",
     "version\n"},
    {"health", NULL, NULL, 0, ctl_health, "The server's /healthz and /readyz", "health\n"},
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static const char GLOBAL_HELP[] =
    "Global flags (before or after the command):\n"
    "  --url URL       server base URL (env STEWARD_URL, default " CTL_DEFAULT_URL ")\n"
    "  --api-key KEY   API key for /api routes (env STEWARD_API_KEY; the variable\n"
    "                  keeps the key out of the process list)\n"
    "  --cacert FILE   CA that signed the server certificate (env STEWARD_CACERT),\n"
    "                  e.g. <data dir>/ca/ca.pem\n"
    "  --insecure      do not verify the server certificate\n"
    "  --json          print the server's JSON answer, pretty, for scripts\n"
    "  --timeout SEC   give up on a request after SEC seconds (default 30)\n"
    "  -h, --help      this help, or a command's\n"
    "\nExit status: 0 success, 1 failure (server error, network, partial success),\n"
    "2 usage error.\n";

static void print_overview(FILE *f, const char *group)
{
    fprintf(f, "usage: stewardctl [flags] <command> [command flags]\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct command *k = &COMMANDS[i];
        if (group && strcmp(group, k->group) != 0)
            continue;
        char name[40];
        snprintf(name, sizeof name, "%s%s%s", k->group, k->action ? " " : "",
                 k->action ? k->action : "");
        fprintf(f, "  %-19s%s\n", name, k->summary);
    }
    fprintf(f, "\n%s", GLOBAL_HELP);
}

static void print_command_help(FILE *f, const struct command *k)
{
    fprintf(f, "%s.\n\nusage: stewardctl %s\n%s", k->summary, k->usage, GLOBAL_HELP);
}

static int group_exists(const char *group)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(COMMANDS[i].group, group) == 0)
            return 1;
    return 0;
}

static int group_has_actions(const char *group)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(COMMANDS[i].group, group) == 0)
            return COMMANDS[i].action != NULL;
    return 0;
}

static const struct command *find_command(const char *group, const char *action)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct command *k = &COMMANDS[i];
        if (strcmp(k->group, group) == 0 &&
            (!k->action || (action && strcmp(k->action, action) == 0)))
            return k;
    }
    return NULL;
}

static int asks_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}

/* Resolves the command words; prints help or a usage error when they do not
 * name a command. Returns the command, or NULL with *exit_code set. */
static const struct command *resolve(int argc, char **argv, int *idx, size_t nwords,
                                     int *exit_code)
{
    const char *group = nwords > 0 ? argv[idx[0]] : NULL;
    const char *action = nwords > 1 ? argv[idx[1]] : NULL;
    if (!group || strcmp(group, "help") == 0) {
        struct ctl_opts o;
        struct ctl_args a;
        ctl_opts_defaults(&o);
        if (!group && ctl_args_parse(argc, argv, idx, nwords, NULL, &o, &a, stderr) < 0) {
            *exit_code = CTL_EXIT_USAGE; /* e.g. "--url" without its value */
            return NULL;
        }
        if (!group)
            ctl_args_free(&a);
        int help = group || asks_help(argc, argv);
        print_overview(help ? stdout : stderr, NULL);
        *exit_code = help ? CTL_EXIT_OK : CTL_EXIT_USAGE;
        return NULL;
    }
    if (!group_exists(group)) {
        fprintf(stderr, "stewardctl: unknown command \"%s\" (see stewardctl --help)\n", group);
        *exit_code = CTL_EXIT_USAGE;
        return NULL;
    }
    const struct command *k = find_command(group, action);
    if (!k && !action && asks_help(argc, argv)) {
        print_overview(stdout, group);
        *exit_code = CTL_EXIT_OK;
        return NULL;
    }
    if (!k) {
        if (action)
            fprintf(stderr, "stewardctl: unknown command \"%s %s\"\n\n", group, action);
        else
            fprintf(stderr, "stewardctl: \"%s\" needs a subcommand\n\n", group);
        print_overview(stderr, group);
        *exit_code = CTL_EXIT_USAGE;
    }
    return k;
}

static int run(int argc, char **argv)
{
    struct ctl c = {.out = stdout, .err = stderr};
    ctl_opts_defaults(&c.opts);
    int idx[2];
    const struct ctl_optspec *all[NCOMMANDS + 1] = {0};
    for (size_t i = 0, n = 0; i < NCOMMANDS; i++)
        if (COMMANDS[i].opts)
            all[n++] = COMMANDS[i].opts;
    size_t nwords = ctl_args_words(argc, argv, 2, idx, all);
    int exit_code = CTL_EXIT_USAGE;
    const struct command *k = resolve(argc, argv, idx, nwords, &exit_code);
    if (!k)
        return exit_code;
    size_t used = group_has_actions(k->group) ? 2 : 1;
    struct ctl_args a;
    if (ctl_args_parse(argc, argv, idx, used, k->opts, &c.opts, &a, stderr) < 0)
        return CTL_EXIT_USAGE;
    if (c.opts.help) {
        print_command_help(stdout, k);
        exit_code = CTL_EXIT_OK;
    } else if (k->needs_key && !c.opts.api_key) {
        ctl_fail(&c, "no API key: give --api-key KEY or set STEWARD_API_KEY");
        exit_code = CTL_EXIT_USAGE;
    } else {
        exit_code = k->run(&c, &a);
    }
    ctl_args_free(&a);
    ctl_client_free(c.client);
    return exit_code;
}

int main(int argc, char **argv)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "stewardctl: cannot initialise libcurl\n");
        return CTL_EXIT_FAIL;
    }
    int rc = run(argc, argv);
    curl_global_cleanup();
    return rc;
}
