/* `imqtt token`: mint a JWT for a user, for tests and operators.
 *
 *   imqtt token --sub USER [--ttl SECONDS] [--groups a,b] [--alg ALG]
 *               [--key-file FILE | --secret STRING] [--iss X] [--aud Y]
 *               [--acl-pub f1,f2] [--acl-sub f1,f2]
 *
 * Prints the token and a newline on stdout. See docs/auth.md.
 */
#ifndef IMQTT_CMD_TOKEN_H
#define IMQTT_CMD_TOKEN_H

/* argv[0] is the subcommand name ("token"); the options follow. Uses
 * getopt_long (resets optind). Returns the process exit status: 0 on
 * success, 1 on failure, 2 on a usage error (message on stderr). */
int cmd_token_main(int argc, char **argv);

#endif
