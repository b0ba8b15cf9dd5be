import sys

from phm_audit.cli import main

sys.exit(main())
