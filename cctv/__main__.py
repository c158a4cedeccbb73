import sys

from cctv.cli import main

sys.exit(main())
