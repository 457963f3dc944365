exitnow

EVENT plain ALL

nolinger

bogus command

