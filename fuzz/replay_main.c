/*
 * A main() for builds without libFuzzer: runs LLVMFuzzerTestOneInput over
 * every file named on the command line, or every regular file in a named
 * directory (sorted, so runs are reproducible). ctest uses it to replay
 * each target's corpus as a regression test.
 *
 * Exit status: 0 when every input ran (a finding aborts the process), 1
 * when an argument could not be read or a directory held no input.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  if (!f) {
    perror(path);
    return -1;
  }
  for (;;) {
    size_t got;
    if (len == cap) {
      uint8_t *nb;
      cap = cap ? cap * 2 : 4096;
      nb = realloc(buf, cap);
      if (!nb) {
        fclose(f);
        free(buf);
        return -1;
      }
      buf = nb;
    }
    got = fread(buf + len, 1, cap - len, f);
    if (got == 0) break;
    len += got;
  }
  fclose(f);
  LLVMFuzzerTestOneInput(buf, len);
  free(buf);
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, int *count) {
  DIR *d = opendir(dir);
  struct dirent *de;
  char **names = NULL;
  size_t n = 0, cap = 0, i;
  int rv = 0;
  if (!d) {
    perror(dir);
    return -1;
  }
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    if (n == cap) {
      char **nn;
      cap = cap ? cap * 2 : 64;
      nn = realloc(names, cap * sizeof(*nn));
      if (!nn) {
        rv = -1;
        break;
      }
      names = nn;
    }
    names[n] = malloc(strlen(dir) + strlen(de->d_name) + 2);
    if (!names[n]) {
      rv = -1;
      break;
    }
    sprintf(names[n], "%s/%s", dir, de->d_name);
    n++;
  }
  closedir(d);
  if (n) qsort(names, n, sizeof(*names), cmp_str);
  for (i = 0; i < n; i++) {
    struct stat st;
    if (rv == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
      if (run_file(names[i]) != 0) rv = -1;
      else (*count)++;
    }
    free(names[i]);
  }
  free(names);
  return rv;
}

int main(int argc, char **argv) {
  int i, count = 0, failed = 0;
  for (i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      failed = 1;
    } else if (S_ISDIR(st.st_mode)) {
      int before = count;
      if (run_dir(argv[i], &count) != 0) failed = 1;
      if (count == before) {
        fprintf(stderr, "%s: no inputs\n", argv[i]);
        failed = 1;
      }
    } else if (run_file(argv[i]) != 0) {
      failed = 1;
    } else {
      count++;
    }
  }
  printf("%s: ran %d inputs%s\n", argc > 0 ? argv[0] : "replay", count,
         failed ? " (with errors)" : "");
  return failed;
}
