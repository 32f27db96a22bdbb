/* A stand-in for the linkerd-await release binary, for machines that cannot reach
 * GitHub. Statically linked like the real (musl) release assets, it accepts the same
 * basic command line: `--help` prints usage; `-- CMD...` runs CMD. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            puts("linkerd-await (stand-in) 0.3.3\n"
                 "USAGE: linkerd-await [--shutdown] [-- <CMD>...]");
            return 0;
        }
        if (strcmp(argv[i], "--") == 0 && i + 1 < argc) {
            execvp(argv[i + 1], &argv[i + 1]);
            perror("linkerd-await: exec");
            return 127;
        }
    }
    return 0;
}
