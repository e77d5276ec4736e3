// sqlite-hello is a WASI p1 command built from C: SQLite (its amalgamation,
// hack/tools.sh sqlite3-src) with a main that opens an in-memory database,
// creates a table, inserts a row and prints it back. About 1 MB of Wasm from
// real code, it is the module the pod start benchmark pulls and compiles
// cold: Go's smallest wasip1 programs are twice that (internal/nodebench).
//
//	sqlite-hello              prints "hello from SQLite 3.x.y" and exits
//	sqlite-hello sleep 1h     then sleeps that long (ms, s, m or h)
//	sqlite-hello work 200000  then inserts that many rows, indexes them and
//	                          queries them, printing the count and a checksum
//	                          (CPU-bound work, for comparing compiled code)
//
// hack/wasm.sh builds it with zig cc (hack/tools.sh zig) for wasm32-wasi.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sqlite3.h"

static int print_row(void *arg, int ncols, char **values, char **names) {
  (void)arg;
  (void)names;
  for (int i = 0; i < ncols; i++)
    printf("%s\n", values[i] ? values[i] : "NULL");
  return 0;
}

// parse_duration reads "<n>ms", "<n>s", "<n>m" or "<n>h" into seconds.
static int parse_duration(const char *s, double *out) {
  char *end;
  double n = strtod(s, &end);
  if (end == s || n < 0)
    return -1;
  if (strcmp(end, "ms") == 0)
    *out = n / 1000;
  else if (strcmp(end, "s") == 0)
    *out = n;
  else if (strcmp(end, "m") == 0)
    *out = n * 60;
  else if (strcmp(end, "h") == 0)
    *out = n * 3600;
  else
    return -1;
  return 0;
}

int main(int argc, char **argv) {
  double sleep_s = 0;
  long work = 0;
  if (argc == 3 && strcmp(argv[1], "sleep") == 0) {
    if (parse_duration(argv[2], &sleep_s) != 0) {
      fprintf(stderr, "sqlite-hello: sleep %s: want a number and ms, s, m or h\n", argv[2]);
      return 2;
    }
  } else if (argc == 3 && strcmp(argv[1], "work") == 0) {
    char *end;
    work = strtol(argv[2], &end, 10);
    if (*end != 0 || work <= 0) {
      fprintf(stderr, "sqlite-hello: work %s: want a positive number of rows\n", argv[2]);
      return 2;
    }
  } else if (argc != 1) {
    fprintf(stderr, "usage: sqlite-hello [sleep DURATION | work ROWS]\n");
    return 2;
  }
  sqlite3 *db;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
    fprintf(stderr, "sqlite-hello: open: %s\n", sqlite3_errmsg(db));
    return 1;
  }
  char *err = NULL;
  const char *sql = "CREATE TABLE greeting(text);"
                    "INSERT INTO greeting VALUES ('hello from SQLite ' || sqlite_version());"
                    "SELECT text FROM greeting;";
  if (sqlite3_exec(db, sql, print_row, NULL, &err) != SQLITE_OK) {
    fprintf(stderr, "sqlite-hello: %s\n", err);
    sqlite3_free(err);
    sqlite3_close(db);
    return 1;
  }
  if (work > 0) {
    char q[512];
    snprintf(q, sizeof q,
             "PRAGMA temp_store=MEMORY;CREATE TABLE t(a INTEGER, b TEXT);"
             "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<%ld)"
             " SELECT x, printf('%%08x', (x*2654435761) %% 4294967296) FROM c;"
             "CREATE INDEX tb ON t(b);"
             "SELECT count(*), sum(a %% 1000) FROM t WHERE b > '8';",
             work);
    if (sqlite3_exec(db, q, print_row, NULL, &err) != SQLITE_OK) {
      fprintf(stderr, "sqlite-hello: work: %s\n", err);
      sqlite3_free(err);
      sqlite3_close(db);
      return 1;
    }
  }
  sqlite3_close(db);
  fflush(stdout);
  if (sleep_s > 0) {
    struct timespec ts = {.tv_sec = (time_t)sleep_s,
                          .tv_nsec = (long)((sleep_s - (time_t)sleep_s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  return 0;
}
