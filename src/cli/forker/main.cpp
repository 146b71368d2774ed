// `forker`: the docker-like command line. Image commands first (issue 6); run/exec/ps come next.
#include <cstdio>

int main(int argc, char** argv) {
  (void)argc;
  (void)argv;
  std::fprintf(stderr, "forker: no commands yet\n");
  return 1;
}
