from tlt_pipe.cli import main

main()
